"""Builds at conda-store's edges, through the API with the real solver, packer and image
builder on the tiny channel: empty environments, the 255-character build path, lockfiles
served back byte for byte, and a build that is BUILDING (and cancelable) while it solves."""

from __future__ import annotations

import asyncio
import io
import json
import tarfile
from typing import Any

from services.packer.worker import PackerWorker
from services.registry.builder import ImageBuilder
from services.solver.resolve import Resolver
from services.solver.worker import SolverWorker
from shared.build_path import BUILD_PATH_TOO_LONG
from shared.events import SpecSubmitted, utcnow
from shared.spec import build_key_v2, specification_sha256
from tests.fixtures.api import ApiHarness, api  # noqa: F401
from tests.integration.test_registry import serve_registry
from tests.integration.test_registry_support import run_in_runc

SOLVE_DELAY_S = 3.0


async def start_workers(h: ApiHarness, *, solve_delay_s: float = 0.0, image: bool = False) -> None:
    settings, arts, pool = h.state.settings, h.state.artifacts, h.store.pool
    workers: list[Any] = [
        SolverWorker(
            Resolver.from_settings(settings, pool),
            arts,
            pool,
            solve_delay_s,
            store_root=settings.store_root,
        ),
        PackerWorker(settings, arts, pool),
    ]
    if image:
        workers.append(ImageBuilder(arts, settings))
    await h.stack.run_workers(*workers)


async def submit(h: ApiHarness, body: dict[str, Any]) -> int:
    r = await h.client.post("/api/v1/specification/", json=body, headers=h.admin())
    assert r.status_code == 200, r.text
    return r.json()["data"]["build_id"]


async def build_json(h: ApiHarness, build_id: int) -> dict[str, Any]:
    r = await h.client.get(f"/api/v1/build/{build_id}/", headers=h.admin())
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def finished(h: ApiHarness, build_id: int) -> dict[str, Any]:
    await h.stack.wait_build(build_id)
    await h.projected()
    return await build_json(h, build_id)


async def download(h: ApiHarness, url: str) -> bytes:
    r = await h.client.get(url, headers=h.admin())
    if r.status_code == 307:
        r = await h.client.get(r.headers["location"])
    assert r.status_code == 200, (url, r.status_code, r.text[:200])
    return r.content


async def event_types(h: ApiHarness, build_id: int) -> list[str]:
    return [e.type for e in await h.store.read_stream(f"build-{build_id}")]


# --- empty environments ------------------------------------------------------------------


async def test_empty_dependencies_build_an_empty_environment(
    api: ApiHarness,  # noqa: F811
    tiny_channel: Any,
    tmp_path: Any,
) -> None:
    await start_workers(api, image=True)
    texts = {
        "empty-list": f"name: empty-list\nchannels: [{tiny_channel.url}]\ndependencies: []\n",
        "no-deps": f"name: no-deps\nchannels: [{tiny_channel.url}]\n",
    }
    ids = {
        n: await submit(api, {"namespace": "default", "specification": t}) for n, t in texts.items()
    }
    for name, build_id in ids.items():
        build = await finished(api, build_id)
        assert build["status"] == "COMPLETED", (name, build["status_info"])
        types = {a["artifact_type"] for a in build["build_artifacts"]}
        assert {"LOCKFILE", "YAML", "CONDA_PACK", "LOGS"} <= types, types
        lockfile = json.loads(await download(api, f"/api/v1/build/{build_id}/lockfile/"))
        assert lockfile["package"] == [] and "linux-64" in lockfile["metadata"]["platforms"]
        archive = await download(api, f"/api/v1/build/{build_id}/archive/")
        with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
            names = tar.getnames()
        assert "bin/conda-unpack" in names and not any(n.startswith("lib/") for n in names)
        r = await api.client.get(f"/api/v1/build/{build_id}/packages/", headers=api.admin())
        assert r.json()["count"] == 0

    # the image of an empty environment exists and runs
    build_id = ids["empty-list"]
    for _ in range(600):
        types = await event_types(api, build_id)
        if "ImagePushed" in types or "ImageFailed" in types:
            break
        await asyncio.sleep(0.1)
    assert "ImagePushed" in types, [
        e.data for e in await api.store.read_stream(f"build-{build_id}")
    ]
    async with serve_registry(api.stack, api.state.settings, api.state.artifacts) as served:
        out = await run_in_runc(
            served.host, "default/empty-list:latest", ["/bin/sh", "-c", "ls /opt/conda"], tmp_path
        )
    assert "conda-meta" in out


# --- the 255-character build path --------------------------------------------------------


async def test_long_environment_name_fails_the_build_with_conda_stores_message(
    api: ApiHarness,  # noqa: F811
    tiny_channel: Any,
) -> None:
    await start_workers(api)
    name = "e" * 240  # a legal name (<= 255), but <store>/<namespace>/<key> is longer
    text = f"name: {name}\nchannels: [{tiny_channel.url}]\ndependencies: [libfoo]\n"
    build_id = await submit(api, {"namespace": "default", "specification": text})
    build = await finished(api, build_id)
    assert build["status"] == "FAILED"
    assert build["status_info"] == BUILD_PATH_TOO_LONG
    assert "Solved" not in await event_types(api, build_id)  # failed before solving
    log = (await download(api, f"/api/v1/build/{build_id}/logs/")).decode()
    assert BUILD_PATH_TOO_LONG in log


# --- lockfiles byte for byte -------------------------------------------------------------


def reordered(document: dict[str, Any]) -> str:
    """The same lockfile with keys in an order no serializer would pick, two-space indent."""
    metadata = document["metadata"]
    return (
        json.dumps(
            {
                "package": document["package"],
                "metadata": {k: metadata[k] for k in reversed(list(metadata))},
                "version": 1,
            },
            indent=2,
        )
        + "\n"
    )


async def test_submitted_lockfile_is_served_back_byte_identical(
    api: ApiHarness,  # noqa: F811
    tiny_channel: Any,
) -> None:
    await start_workers(api)
    text = f"name: source\nchannels: [{tiny_channel.url}]\ndependencies: [baz]\n"
    source = await submit(api, {"namespace": "default", "specification": text})
    assert (await finished(api, source))["status"] == "COMPLETED"
    solved = json.loads(await download(api, f"/api/v1/build/{source}/lockfile/"))

    submitted = reordered(solved)
    build_id = await submit(
        api,
        {
            "namespace": "default",
            "is_lockfile": True,
            "environment_name": "locked",
            "specification": submitted,
        },
    )
    assert (await finished(api, build_id))["status"] == "COMPLETED"
    for route in ("lockfile/", "conda-lock.yml", "conda-lock.yaml"):
        served = await download(api, f"/api/v1/build/{build_id}/{route}")
        assert served.decode() == submitted, route

    # a rebuild of the lockfile build serves the same bytes
    r = await api.client.put(f"/api/v1/build/{build_id}/", headers=api.admin())
    rebuilt = r.json()["data"]["build_id"]
    assert (await finished(api, rebuilt))["status"] == "COMPLETED"
    assert (await download(api, f"/api/v1/build/{rebuilt}/lockfile/")).decode() == submitted

    # a lockfile build recorded before the text was kept (the dict form) still builds
    lock = {k: v for k, v in solved.items() if k != "version"}
    spec = {"name": "old-form", "description": "", "lockfile": lock}
    sha = specification_sha256(spec)
    old_id = await api.store.next_build_id()
    old = SpecSubmitted(
        build_id=old_id,
        namespace="default",
        environment="old-form",
        specification=spec,
        sha256=sha,
        is_lockfile=True,
        lockfile=lock,
        build_key=build_key_v2(sha, utcnow(), old_id, "old-form"),
    )
    await api.append(f"build-{old_id}", old)
    assert (await finished(api, old_id))["status"] == "COMPLETED"
    served = json.loads(await download(api, f"/api/v1/build/{old_id}/lockfile/"))
    assert served["package"] == solved["package"]


# --- BUILDING from the moment a solver takes the build -----------------------------------


async def test_build_is_building_while_it_solves_and_cancel_stops_the_solve(
    api: ApiHarness,  # noqa: F811
    tiny_channel: Any,
) -> None:
    await start_workers(api, solve_delay_s=SOLVE_DELAY_S)
    text = f"name: slow\nchannels: [{tiny_channel.url}]\ndependencies: [libfoo]\n"
    build_id = await submit(api, {"namespace": "default", "specification": text})
    # a client polling the API sees the build BUILDING before the solve has produced anything
    status = ""
    for _ in range(300):
        status = (await build_json(api, build_id))["status"]
        if status != "QUEUED":
            break
        await asyncio.sleep(0.05)
    assert status == "BUILDING"
    assert "Solved" not in await event_types(api, build_id)
    started = (await build_json(api, build_id))["started_on"]
    assert started is not None

    r = await api.client.put(f"/api/v1/build/{build_id}/cancel/", headers=api.admin())
    assert r.status_code == 200, r.text
    build = await finished(api, build_id)
    assert build["status"] == "CANCELED"

    # the solver finishes handling the build without a Solved, and nothing is packed
    submitted = (await api.store.read_stream(f"build-{build_id}"))[0]
    for _ in range(400):
        if await api.store.is_tracked("solver", str(submitted.event_id)):
            break
        await asyncio.sleep(0.05)
    assert await api.store.is_tracked("solver", str(submitted.event_id))
    types = await event_types(api, build_id)
    assert "Solved" not in types and "Packed" not in types, types
    assert types.count("BuildStarted") == 1, types
    log = (await download(api, f"/api/v1/build/{build_id}/logs/")).decode()
    assert "solve stopped: the build was canceled" in log, log
