"""Lifecycle through the API with the real solver and packer on the tiny channel:
create -> build completes -> edit spec -> second build -> set current back to the first ->
delete the second (logs/lockfile/yaml still downloadable, archive gone) -> delete environment ->
delete namespace; after each step the read model and the artifact store agree."""

from __future__ import annotations

from typing import Any

from tests.fixtures.api import ApiHarness, api  # noqa: F401


def spec_text(channel: str, *deps: str) -> str:
    return (
        "name: life\nchannels:\n  - "
        + channel
        + "\ndependencies:\n"
        + "".join(f"  - {d}\n" for d in deps)
    )


async def start_workers(h: ApiHarness, settings: Any = None) -> None:
    """The real solver and packer on the API's store; ``settings`` default to the API's."""
    from services.packer.worker import PackerWorker
    from services.solver.resolve import Resolver
    from services.solver.worker import SolverWorker

    settings = settings or h.state.settings
    arts, pool = h.state.artifacts, h.store.pool
    await h.stack.run_workers(
        SolverWorker(Resolver.from_settings(settings, pool), arts, pool),
        PackerWorker(settings, arts, pool),
    )


async def download(h: ApiHarness, url: str, headers: dict[str, str]) -> Any:
    r = await h.client.get(url, headers=headers)
    if r.status_code != 307:
        return r
    return await h.client.get(r.headers["location"])


async def storage_agrees(h: ApiHarness) -> dict[int, dict[str, str]]:
    """Every artifact the read model lists is stored; returns {build: {type: key}}."""
    rows = await h.store.pool.fetch("SELECT build_id, artifact_type, key FROM build_artifacts")
    listed: dict[int, dict[str, str]] = {}
    for r in rows:
        listed.setdefault(r["build_id"], {})[r["artifact_type"]] = r["key"]
        if r["artifact_type"] != "DIRECTORY":
            assert await h.state.artifacts.exists(r["key"]), r["key"]
    return listed


async def test_environment_lifecycle(api: ApiHarness, tiny_channel: Any) -> None:  # noqa: F811
    await start_workers(api)
    admin = api.admin()
    post = {"namespace": "life", "specification": spec_text(tiny_channel.url, "libfoo")}
    r = await api.client.post("/api/v1/specification/", json=post, headers=admin)
    assert r.status_code == 200, r.text
    first = r.json()["data"]["build_id"]
    assert (await api.stack.wait_build(first))["status"] == "COMPLETED"
    await api.projected()
    arts = (await storage_agrees(api))[first]
    assert {"LOCKFILE", "YAML", "CONDA_PACK", "LOGS", "SBOM"} <= set(arts)
    sbom = await download(api, f"/api/v1/build/{first}/sbom/", admin)
    assert sbom.status_code == 200 and "pkg:conda/libfoo@" in sbom.text
    env = (await api.client.get("/api/v1/environment/life/life/", headers=admin)).json()["data"]
    assert env["current_build_id"] == first

    post["specification"] = spec_text(tiny_channel.url, "libfoo", "baz")
    r = await api.client.post("/api/v1/specification/", json=post, headers=admin)
    second = r.json()["data"]["build_id"]
    assert (await api.stack.wait_build(second))["status"] == "COMPLETED"
    await api.projected()
    env = (await api.client.get("/api/v1/environment/life/life/", headers=admin)).json()["data"]
    assert env["current_build_id"] == second
    r = await api.client.get(f"/api/v1/build/{second}/packages/?size=100", headers=admin)
    assert {"libfoo", "baz"} <= {p["name"] for p in r.json()["data"]}

    r = await api.client.put(
        "/api/v1/environment/life/life/", json={"build_id": first}, headers=admin
    )
    assert r.status_code == 200, r.text
    env = (await api.client.get("/api/v1/environment/life/life/", headers=admin)).json()["data"]
    assert env["current_build_id"] == first

    second_keys = (await storage_agrees(api))[second]
    assert (await api.client.delete(f"/api/v1/build/{second}/", headers=admin)).status_code == 200
    for kind in ("logs", "lockfile", "yaml"):
        got = await download(api, f"/api/v1/build/{second}/{kind}/", admin)
        assert got.status_code == 200 and got.content, kind
    assert (await download(api, f"/api/v1/build/{second}/archive/", admin)).status_code == 404
    assert not await api.state.artifacts.exists(second_keys["CONDA_PACK"])
    after = await storage_agrees(api)
    assert set(after[second]) == {"LOGS", "LOCKFILE", "YAML"}
    r = await api.client.get(f"/api/v1/build/{second}/", headers=admin)
    assert r.status_code == 200  # a deleted build stays visible

    first_keys = after[first]
    assert (await api.client.delete("/api/v1/environment/life/life/", headers=admin)).json() == {
        "status": "ok",
        "message": None,
    }
    for kind, key in [*first_keys.items(), *after[second].items()]:
        if kind != "DIRECTORY":  # a path in the store, not a stored key (test_store_directory)
            assert not await api.state.artifacts.exists(key), key
    listed = await storage_agrees(api)
    assert first not in listed and second not in listed
    r = await api.client.get("/api/v1/environment/?namespace=life", headers=admin)
    assert r.json()["count"] == 0

    assert (await api.client.delete("/api/v1/namespace/life/", headers=admin)).status_code == 200
    r = await api.client.get("/api/v1/namespace/life/", headers=admin)
    assert r.status_code == 404
    assert await api.state.artifacts.list(f"builds/{first}/") == []
    assert await api.state.artifacts.list(f"builds/{second}/") == []
