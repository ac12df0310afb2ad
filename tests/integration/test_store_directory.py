"""The store directory through the API, with the real solver, packer and store linker.

``<store>/<namespace>/<build key>`` holds every live build's prefix and
``<store>/<namespace>/envs/<name>`` follows the current build: a new build, a rollback with
``PUT``, a deleted build, environment and namespace. The settings that shape a build's
directory (``default_permissions``/``uid``/``gid``, ``storage_threshold``, ``build_artifacts``)
are obeyed.
"""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

from services.packer.store import COMPLETE_MARKER, is_complete, link_of, link_target
from tests.fixtures.api import ApiHarness, api  # noqa: F401


def spec_text(name: str, channel: str, *deps: str) -> str:
    lines = [f"name: {name}", "channels:", f"  - {channel}", "dependencies:"]
    return "\n".join([*lines, *(f"  - {d}" for d in deps)]) + "\n"


async def start_workers(h: ApiHarness) -> None:
    from services.packer.linker import StoreLinker
    from services.packer.worker import PackerWorker
    from services.solver.resolve import Resolver
    from services.solver.worker import SolverWorker

    settings, arts, pool = h.state.settings, h.state.artifacts, h.store.pool
    await h.stack.run_workers(
        SolverWorker(Resolver.from_settings(settings, pool), arts, pool),
        PackerWorker(settings, arts, pool),
        StoreLinker(settings.store_root, pool),
    )


async def build(h: ApiHarness, namespace: str, text: str) -> dict[str, Any]:
    body = {"namespace": namespace, "specification": text}
    r = await h.client.post("/api/v1/specification/", json=body, headers=h.admin())
    assert r.status_code == 200, r.text
    build_id = r.json()["data"]["build_id"]
    row = await h.stack.wait_build(build_id)
    await h.projected()
    r = await h.client.get(f"/api/v1/build/{build_id}/", headers=h.admin())
    return {"status": row["status"], "status_info": row["status_info"], **r.json()["data"]}


def directory_of(b: dict[str, Any]) -> Path:
    keys = {a["artifact_type"]: a["key"] for a in b["build_artifacts"]}
    return Path(keys["DIRECTORY"])


async def eventually(check: Any, timeout: float = 15) -> None:
    """The linker acts on the events after the read model; wait for the disk to agree."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "the store directory never reached the expected state"
        await asyncio.sleep(0.05)


async def test_links_follow_the_current_build_through_rollback_and_deletion(
    api: ApiHarness,  # noqa: F811
    tiny_channel: Any,
) -> None:
    await start_workers(api)
    store = api.state.settings.store_root
    first = await build(api, "team", spec_text("analysis", tiny_channel.url, "libfoo"))
    assert first["status"] == "COMPLETED", first["status_info"]
    one = directory_of(first)
    assert one == store / "team" / first["build_key"] and is_complete(one)
    assert (one / "conda-meta").is_dir() and list((one / "conda-meta").glob("libfoo-*.json"))
    link = link_of(store, "team", "analysis")
    await eventually(lambda: link_target(link) == one)
    assert not os.path.isabs(os.readlink(link))  # relative: the store may be mounted anywhere

    # a process working in the current build keeps its files when the link moves on
    reader = await asyncio.create_subprocess_exec(
        "sh",
        "-c",
        f"cd {link}/ && read _ && cat {COMPLETE_MARKER}",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    second = await build(api, "team", spec_text("analysis", tiny_channel.url, "libfoo", "baz"))
    assert second["status"] == "COMPLETED", second["status_info"]
    two = directory_of(second)
    await eventually(lambda: link_target(link) == two)
    out, _ = await asyncio.wait_for(reader.communicate(b"\n"), 10)
    assert f'"build_id": {first["id"]}' in out.decode()
    assert one.is_dir()  # old builds stay for rollback

    r = await api.client.put(
        "/api/v1/environment/team/analysis/", json={"build_id": first["id"]}, headers=api.admin()
    )
    assert r.status_code == 200, r.text
    await eventually(lambda: link_target(link) == one)

    # deleting the current build removes its directory and the link (never left dangling)
    assert (
        await api.client.delete(f"/api/v1/build/{first['id']}/", headers=api.admin())
    ).is_success
    await eventually(lambda: not one.exists() and not link.is_symlink())
    r = await api.client.get(f"/api/v1/build/{first['id']}/", headers=api.admin())
    assert "DIRECTORY" not in {a["artifact_type"] for a in r.json()["data"]["build_artifacts"]}
    r = await api.client.put(
        "/api/v1/environment/team/analysis/", json={"build_id": second["id"]}, headers=api.admin()
    )
    await eventually(lambda: link_target(link) == two)

    other = await build(api, "team", spec_text("other", tiny_channel.url, "bar"))
    other_dir = directory_of(other)
    await eventually(lambda: link_target(link_of(store, "team", "other")) == other_dir)
    assert (
        await api.client.delete("/api/v1/environment/team/analysis/", headers=api.admin())
    ).is_success
    await eventually(lambda: not two.exists() and not link.is_symlink())
    assert other_dir.is_dir()  # the other environment is untouched

    assert (await api.client.delete("/api/v1/namespace/team/", headers=api.admin())).is_success
    await eventually(lambda: not (store / "team").exists())


async def test_settings_shape_the_directory(api: ApiHarness, tiny_channel: Any) -> None:  # noqa: F811
    await start_workers(api)
    uid = 4321 if os.getuid() == 0 else os.getuid()  # only root may give files away
    owner = {
        "default_permissions": "750",
        "default_uid": uid,
        "default_gid": uid if os.getuid() == 0 else os.getgid(),
    }
    r = await api.client.put("/api/v1/setting/", json=owner, headers=api.admin())
    assert r.status_code == 200, r.text
    artifacts = {"build_artifacts": ["LOCKFILE", "YAML"]}  # no archive, no image
    r = await api.client.put("/api/v1/setting/owned/", json=artifacts, headers=api.admin())
    assert r.status_code == 200, r.text
    b = await build(api, "owned", spec_text("perm", tiny_channel.url, "libfoo"))
    assert b["status"] == "COMPLETED", b["status_info"]
    prefix = directory_of(b)
    for path in [prefix, *prefix.rglob("*")]:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            continue
        assert stat.S_IMODE(st.st_mode) == 0o750, path
        assert st.st_uid == uid, path
    types = {a["artifact_type"] for a in b["build_artifacts"]}
    assert "CONDA_PACK" not in types and {"DIRECTORY", "LOCKFILE", "YAML", "LOGS"} <= types
    r = await api.client.get(f"/api/v1/build/{b['id']}/archive/", headers=api.admin())
    assert r.status_code == 404
    assert await api.state.artifacts.list(f"builds/{b['id']}/archive") == []

    r = await api.client.put(
        "/api/v1/setting/", json={"storage_threshold": 2**62}, headers=api.admin()
    )
    assert r.status_code == 200, r.text
    full = await build(api, "owned", spec_text("full", tiny_channel.url, "libfoo"))
    assert full["status"] == "FAILED"
    assert "storage_threshold" in full["status_info"] and "bytes free" in full["status_info"]
    assert not (api.state.settings.store_root / "owned" / full["build_key"]).exists()
