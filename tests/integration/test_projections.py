"""Projections: live incremental projection and a full rebuild give identical read-model rows."""

from __future__ import annotations

import asyncio

from shared.events import (
    BuildCanceled,
    BuildDeleted,
    BuildFailed,
    BuildStarted,
    CurrentBuildSet,
    EnvironmentDeleted,
    EventData,
    ImagePushed,
    NamespaceCreated,
    NamespaceDeleted,
    NamespaceMetadataSet,
    NamespaceRoleSet,
    PackageRef,
    Packed,
    RoleBindingsChanged,
    SettingsChanged,
    Solved,
    SpecSubmitted,
    new_event,
)
from shared.eventstore import EventStore
from shared.projections import Projector, rebuild_projections
from shared.projections.store import TABLES


def spec(build_id: int, ns: str, env: str, sha: str) -> SpecSubmitted:
    return SpecSubmitted(
        build_id=build_id,
        namespace=ns,
        environment=env,
        specification={"name": env, "dependencies": ["python"]},
        sha256=sha,
        build_key=f"{sha[:8]}-1-{build_id}-{env}",
    )


PKGS = [PackageRef(name="python", version="3.11.7", build="0_cpython", channel="c")]


def history() -> list[tuple[str, EventData]]:
    """A small but complete life: builds succeed, fail, get canceled, deleted, rebuilt."""
    return [
        ("namespace-alpha", NamespaceCreated(namespace="alpha")),
        ("namespace-alpha", NamespaceMetadataSet(namespace="alpha", metadata={"team": "a"})),
        (
            "namespace-alpha",
            RoleBindingsChanged(namespace="alpha", role_mappings={"x/*": ["editor"]}),
        ),
        (
            "namespace-alpha",
            NamespaceRoleSet(namespace="alpha", other_namespace="beta", role="viewer"),
        ),
        ("build-1", spec(1, "alpha", "env1", "a" * 64)),
        ("build-1", BuildStarted(build_id=1)),
        ("build-1", Solved(build_id=1, lockfile_key="b/1/l", yaml_key="b/1/y", packages=PKGS)),
        ("build-1", Packed(build_id=1, archive_key="b/1/a", logs_key="b/1/log", size=10)),
        ("build-1", ImagePushed(build_id=1, manifest_digest="sha256:0", manifest_key="m/1")),
        ("build-2", spec(2, "alpha", "env1", "b" * 64)),
        ("build-2", BuildStarted(build_id=2)),
        ("build-2", BuildFailed(build_id=2, phase="solve", reason="nothing provides libfoo")),
        ("build-3", spec(3, "beta", "env2", "a" * 64)),
        ("build-3", BuildCanceled(build_id=3)),
        ("build-3", Packed(build_id=3, archive_key="late", logs_key="late", size=1)),
        ("build-4", spec(4, "alpha", "env1", "c" * 64)),
        ("build-4", Solved(build_id=4, lockfile_key="b/4/l", yaml_key="b/4/y", packages=PKGS * 3)),
        ("build-4", Packed(build_id=4, archive_key="b/4/a", logs_key="b/4/log", size=20)),
        (
            "environment-alpha/env1",
            CurrentBuildSet(namespace="alpha", environment="env1", build_id=1),
        ),
        ("build-4", BuildDeleted(build_id=4)),
        ("settings", SettingsChanged(values={"conda_default_channels": ["x"]})),
        ("settings", SettingsChanged(namespace="alpha", values={"conda_included_packages": ["y"]})),
        ("namespace-alpha", NamespaceRoleSet(namespace="alpha", other_namespace="beta", role=None)),
        ("environment-beta/env2", EnvironmentDeleted(namespace="beta", environment="env2")),
        ("build-5", spec(5, "gamma", "env3", "d" * 64)),
        ("namespace-gamma", NamespaceDeleted(namespace="gamma")),
    ]


async def snapshot(store: EventStore) -> dict[str, list[tuple]]:
    out = {}
    for table in TABLES:
        rows = await store.pool.fetch(f"SELECT * FROM {table} ORDER BY 1, 2")
        out[table] = [tuple(r.values()) for r in rows]
    return out


async def run_projector_until(store: EventStore, position: int, batch_size: int) -> None:
    projector = Projector(store, batch_size=batch_size)
    task = asyncio.create_task(projector.run())
    try:
        for _ in range(400):
            if await store.load_position("projector") >= position:
                return
            await asyncio.sleep(0.025)
        raise TimeoutError("projector did not catch up")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_live_projection_matches_rebuild(event_store: EventStore) -> None:
    events = history()
    half = len(events) // 2
    for stream, data in events[:half]:
        await event_store.append(stream, [new_event(data)])
    await run_projector_until(event_store, await event_store.last_position(), batch_size=3)
    # a restarted projector resumes from its saved position and in-table state
    for stream, data in events[half:]:
        await event_store.append(stream, [new_event(data)])
    await run_projector_until(event_store, await event_store.last_position(), batch_size=2)
    live = await snapshot(event_store)

    count, _ = await rebuild_projections(event_store)
    assert count == len(events)
    rebuilt = await snapshot(event_store)
    assert rebuilt == live

    builds = {r[0]: r for r in live["builds"]}
    status = {bid: row[5] for bid, row in builds.items()}
    assert status == {1: "COMPLETED", 2: "FAILED", 3: "CANCELED", 4: "COMPLETED", 5: "QUEUED"}
    envs = {(r[2], r[3]): r for r in live["environments"]}
    assert envs[("alpha", "env1")][4] == 1  # set back to build 1
    assert envs[("beta", "env2")][7] is not None  # deleted
    assert envs[("gamma", "env3")][7] is not None  # deleted with its namespace
    artifacts = {(r[1], r[2]) for r in live["build_artifacts"]}
    assert (1, "DOCKER_MANIFEST") in artifacts and (1, "CONDA_PACK") in artifacts
    assert (4, "LOCKFILE") in artifacts and (4, "CONDA_PACK") not in artifacts  # deleted build
    assert (3, "CONDA_PACK") not in artifacts  # canceled stays canceled
    assert len([r for r in live["build_packages"] if r[0] == 4]) == 3
    ns = {r[1]: r for r in live["namespaces"]}
    assert ns["alpha"][3] == {"x/*": ["developer"]} and ns["alpha"][4] == []
    assert ns["gamma"][6] is not None
    assert dict(live["runtime_settings"]) == {
        "": {"conda_default_channels": ["x"]},
        "alpha": {"conda_included_packages": ["y"]},
    }


async def test_unusable_events_are_parked_and_projection_goes_on(event_store: EventStore) -> None:
    async with event_store.pool.acquire() as conn:
        for type_, data in (("SpecSubmitted", {"build_id": 9}), ("FromTheFuture", {"x": 1})):
            await conn.fetch(
                "SELECT * FROM append_events($1, NULL, $2)",
                "raw",
                [
                    {
                        "event_id": str(__import__("uuid").uuid4()),
                        "type": type_,
                        "schema_version": 1,
                        "data": data,
                        "metadata": {},
                        "occurred_at": "2026-01-01T00:00:00+00:00",
                    }
                ],
            )
    await event_store.append("namespace-ok", [new_event(NamespaceCreated(namespace="ok"))])
    # parking follows the batch's commit: wait for the parked event's position too
    await run_projector_until(event_store, await event_store.last_position() + 1, batch_size=10)
    assert await event_store.pool.fetchval("SELECT name FROM namespaces") == "ok"
    # parking follows the batch's commit, so the projector may be stopped just before it
    parked = await event_store.read_stream("parked-projector")
    assert [p.data["subject"] for p in parked] == ["SpecSubmitted"]  # unknown types are ignored
    assert "KeyError" in parked[0].data["error"]
    # a rebuild meets the same event again but does not park it twice
    await rebuild_projections(event_store)
    await run_projector_until(event_store, await event_store.last_position(), batch_size=10)
    assert len(await event_store.read_stream("parked-projector")) == 1
