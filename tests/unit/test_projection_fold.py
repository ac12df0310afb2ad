"""The read model's fold (``shared/projections/model.py``) without a database: events go
through the in-memory event log (so they carry positions and versions as stored ones do) and
are applied in log order, as the projector applies them."""

from __future__ import annotations

from datetime import UTC, datetime

from shared.events import (
    BuildCanceled,
    BuildDeleted,
    BuildFailed,
    BuildStarted,
    CurrentBuildSet,
    EnvironmentDeleted,
    EnvironmentDescriptionSet,
    EventData,
    ImageFailed,
    ImagePushed,
    NamespaceCreated,
    NamespaceDeleted,
    NamespaceMetadataSet,
    PackageRef,
    Packed,
    SettingsChanged,
    Solved,
    SpecSubmitted,
    new_event,
    stream_of_build,
    stream_of_environment,
    stream_of_namespace,
)
from shared.eventstore import InMemoryEventStore
from shared.projections.model import ReadModel

AT = datetime(2026, 1, 1, tzinfo=UTC)


class World:
    def __init__(self) -> None:
        self.log = InMemoryEventStore()
        self.model = ReadModel()
        self.position = 0

    async def say(self, stream: str, *payloads: EventData) -> ReadModel:
        await self.log.append(stream, [new_event(p) for p in payloads])
        for event in await self.log.read_all(self.position):
            self.model.apply(event)
            self.position = event.global_position
        return self.model

    async def build(
        self, build_id: int, env: str = "analysis", ns: str = "team", **kw: object
    ) -> None:
        spec = {"name": env, "channels": ["conda-forge"], "dependencies": ["numpy"]}
        await self.say(
            stream_of_build(build_id),
            SpecSubmitted(
                build_id=build_id, namespace=ns, environment=env, specification=spec,
                sha256=f"{build_id:064x}", build_key=f"k{build_id}", **kw,  # type: ignore[arg-type]
            ),
        )  # fmt: skip

    async def complete(self, build_id: int) -> None:
        key = f"builds/{build_id}/"
        await self.say(
            stream_of_build(build_id),
            BuildStarted(build_id=build_id),
            Solved(
                build_id=build_id,
                lockfile_key=key + "conda-lock.yml",
                yaml_key=key + "environment.yaml",
                packages=[PackageRef(name="numpy", version="2.1.0", build="py311_0")],
            ),
            Packed(
                build_id=build_id,
                archive_key=key + "archive.tar.gz",
                logs_key=key + "logs.txt",
                size=42,
            ),
        )


async def test_a_completed_build_is_current_with_its_artifacts_and_packages() -> None:
    w = World()
    await w.build(1)
    build = w.model.builds[1]
    assert build.status == "QUEUED" and build.namespace == "team" and build.build_key == "k1"
    env = w.model.environments[("team", "analysis")]
    assert env.current_build_id == 1  # a new environment's first build is current at once
    w.model.take_dirty()
    await w.complete(1)
    assert build.status == "COMPLETED" and build.size == 42 and build.started_on is not None
    assert set(build.artifacts) == {"LOCKFILE", "YAML", "CONDA_PACK", "LOGS"}
    dirty = w.model.take_dirty()
    assert [p["name"] for p in dirty.packages[1]] == ["numpy"] and 1 in dirty.builds

    await w.build(2)
    assert env.current_build_id == 1  # a second build becomes current only when it completes
    await w.complete(2)
    assert env.current_build_id == 2
    await w.say(
        stream_of_environment("team", "analysis"),
        CurrentBuildSet(namespace="team", environment="analysis", build_id=1),
    )
    assert env.current_build_id == 1  # rollback
    await w.say(
        stream_of_environment("team", "analysis"),
        EnvironmentDescriptionSet(namespace="team", environment="analysis", description="v1"),
    )
    assert env.description == "v1"


async def test_failures_cancels_and_a_solve_after_a_cancel() -> None:
    w = World()
    await w.build(1)
    await w.say(
        stream_of_build(1),
        BuildStarted(build_id=1),
        BuildFailed(build_id=1, phase="solve", reason="conflict", logs_key="builds/1/logs.txt"),
    )
    failed = w.model.builds[1]
    assert (
        failed.status == "FAILED"
        and failed.status_info == "conflict"
        and "LOGS" in failed.artifacts
    )
    await w.build(2)
    await w.say(stream_of_build(2), BuildCanceled(build_id=2))
    await w.complete(2)  # a late solve and pack after the cancel
    canceled = w.model.builds[2]
    assert canceled.status == "CANCELED"  # stays canceled
    assert "LOCKFILE" in canceled.artifacts  # but the solver's files are listed, as 571be92 did
    assert "CONDA_PACK" not in canceled.artifacts


async def test_images_pushed_failed_and_not_made() -> None:
    w = World()
    await w.build(1)
    await w.complete(1)
    await w.say(
        stream_of_build(1),
        ImagePushed(build_id=1, manifest_digest="sha256:ab", manifest_key="blobs/ab"),
    )
    pushed = w.model.builds[1]
    assert (pushed.image_status, pushed.image_digest) == ("PUSHED", "sha256:ab")
    assert pushed.artifacts["DOCKER_MANIFEST"].key == "blobs/ab"
    await w.say(stream_of_build(1), ImageFailed(build_id=1, reason="late"))
    assert pushed.image_status == "PUSHED"  # a pushed image stays pushed
    await w.build(2)
    await w.complete(2)
    await w.say(stream_of_build(2), ImageFailed(build_id=2, reason="no busybox"))
    assert (w.model.builds[2].image_status, w.model.builds[2].image_reason) == (
        "FAILED",
        "no busybox",
    )
    await w.build(3, make_image=False)
    assert w.model.builds[3].image_status == "SKIPPED"


async def test_deletions_of_a_build_an_environment_and_a_namespace() -> None:
    w = World()
    await w.say(
        stream_of_namespace("team"),
        NamespaceCreated(namespace="team"),
        NamespaceMetadataSet(namespace="team", metadata={"a": 1}),
    )
    for build_id in (1, 2):
        await w.build(build_id)
        await w.complete(build_id)
    await w.say(stream_of_build(1), BuildDeleted(build_id=1, kept_artifacts=["LOGS", "LOCKFILE"]))
    one = w.model.builds[1]
    assert (
        one.deleted_on is not None and set(one.artifacts) == {"LOGS", "LOCKFILE"} and one.size == 0
    )
    await w.build(3, env="other")
    await w.say(
        stream_of_environment("team", "analysis"),
        EnvironmentDeleted(namespace="team", environment="analysis"),
    )
    env = w.model.environments[("team", "analysis")]
    assert env.deleted_on is not None
    assert w.model.builds[2].deleted_on is not None and w.model.builds[2].artifacts == {}
    assert w.model.builds[3].deleted_on is None  # another environment is untouched
    await w.say(stream_of_namespace("team"), NamespaceDeleted(namespace="team"))
    ns = w.model.namespaces["team"]
    assert ns.deleted_on is not None and ns.metadata == {}
    assert w.model.environments[("team", "other")].deleted_on is not None
    # a build submitted to the deleted environment brings it back
    await w.build(4)
    assert env.deleted_on is None and env.current_build_id == 4


async def test_settings_by_level() -> None:
    w = World()
    await w.say("settings", SettingsChanged(values={"conda_max_solve_time": 100}))
    await w.say(
        "settings", SettingsChanged(namespace="team", values={"conda_allowed_channels": ["x"]})
    )
    await w.say(
        "settings",
        SettingsChanged(namespace="team", environment="e", values={"build_artifacts": []}),
    )
    assert w.model.settings == {
        "": {"conda_max_solve_time": 100},
        "team": {"conda_allowed_channels": ["x"]},
        "team/e": {"build_artifacts": []},
    }
    assert w.model.take_dirty().settings == {"", "team", "team/e"}


def test_table_columns_are_the_dataclass_fields() -> None:
    """A field added to a read-model dataclass is a column written and read back by name."""
    from shared.projections.model import Build, Namespace
    from shared.projections.store import columns_of, row_of

    assert "artifacts" not in columns_of(Build)  # its own table
    assert {"image_status", "status", "build_key"} <= set(columns_of(Build))
    assert columns_of(Namespace)[:2] == ("id", "name")
    ns = Namespace(1, "team", AT, {"a": 1})
    assert dict(zip(columns_of(Namespace), row_of(ns, columns_of(Namespace)), strict=True))[
        "metadata"
    ] == {"a": 1}
