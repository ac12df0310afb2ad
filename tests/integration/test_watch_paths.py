"""conda-store's ``watch_paths`` (``CONDA_STORE_WATCH_PATHS``) with the real gateway, solver,
packer and store linker: YAML files in a watched directory become builds in the
``filesystem`` namespace, a changed file is rebuilt, an unchanged one never is, and a file
that cannot be built is a FAILED build with the reason, while the scanner goes on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.api.app import create_app
from services.api.watcher import PathWatcher
from services.packer.store import link_of, link_target
from shared.settings import Settings
from tests.fixtures.api import ApiHarness, api_settings
from tests.integration.test_store_directory import eventually, spec_text, start_workers

SCAN_S = 0.2


@pytest.fixture
async def watched(stack: Any, settings: Settings, tmp_path: Path) -> AsyncIterator[Any]:
    """The gateway with a watched folder, scanned every SCAN_S seconds."""
    folder = tmp_path / "environments"
    folder.mkdir()
    s = api_settings(tmp_path, settings).model_copy(
        update={
            "watch_paths": f"{folder}:{tmp_path / 'absent'}",
            "watch_interval_s": SCAN_S,
            "predefined_tokens": {},
            "enable_ui": False,
        }
    )
    app = create_app(s, store=stack.store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield ApiHarness(client, app.state.api, stack.store, stack), folder


async def filesystem_builds(h: ApiHarness, name: str) -> list[dict[str, Any]]:
    r = await h.client.get(
        "/api/v1/build/", params={"namespace": "filesystem", "name": name}, headers=h.admin()
    )
    assert r.status_code == 200, r.text
    return sorted(r.json()["data"], key=lambda b: b["id"])


async def nth_build(h: ApiHarness, name: str, n: int, timeout: float = 60) -> dict[str, Any]:
    """The n-th build (1-based) of filesystem/<name>, once it is terminal."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(found := await filesystem_builds(h, name)) < n:
        assert loop.time() < deadline, f"filesystem/{name} has {len(found)} builds, not {n}"
        await asyncio.sleep(0.1)
    await h.stack.wait_build(found[n - 1]["id"])
    r = await h.client.get(f"/api/v1/build/{found[n - 1]['id']}/", headers=h.admin())
    return r.json()["data"]


async def test_watched_files_build_rebuild_on_change_and_fail_with_the_reason(
    watched: Any, tiny_channel: Any
) -> None:
    h, folder = watched
    await start_workers(h)
    # the name comes from the file's content, not from the file's name
    (folder / "analysis.yaml").write_text(spec_text("from-file", tiny_channel.url, "libfoo"))
    (folder / ".analysis.yaml.swp").write_text(spec_text("swap", tiny_channel.url, "libfoo"))
    (folder / "notes.txt").write_text(spec_text("notes", tiny_channel.url, "libfoo"))
    first = await nth_build(h, "from-file", 1)
    assert first["status"] == "COMPLETED", first["status_info"]
    store = h.state.settings.store_root
    link = link_of(store, "filesystem", "from-file")
    await eventually(lambda: link_target(link) == store / "filesystem" / first["build_key"])

    await asyncio.sleep(SCAN_S * 5)  # several scans of an unchanged file build nothing
    assert len(await filesystem_builds(h, "from-file")) == 1
    r = await h.client.get("/api/v1/build/", params={"namespace": "filesystem"}, headers=h.admin())
    assert len(r.json()["data"]) == 1  # neither the swap file nor notes.txt is watched

    (folder / "analysis.yaml").write_text(spec_text("from-file", tiny_channel.url, "libfoo", "baz"))
    second = await nth_build(h, "from-file", 2)
    assert second["status"] == "COMPLETED", second["status_info"]
    r = await h.client.get("/api/v1/environment/filesystem/from-file/", headers=h.admin())
    assert r.json()["data"]["current_build_id"] == second["id"]
    await eventually(lambda: link_target(link) == store / "filesystem" / second["build_key"])

    # bad YAML: a failed build named after the file, with the reason; the scanner goes on
    (folder / "broken.yml").write_text("name: broken\ndependencies: [\n")
    failed = await nth_build(h, "broken", 1)
    assert failed["status"] == "FAILED"
    assert "broken.yml" in failed["status_info"] and "Invalid YAML" in failed["status_info"]
    assert "line" in failed["status_info"]  # where the YAML broke
    # a valid YAML document that is not a valid specification keeps its declared name
    (folder / "typo.yaml").write_text("name: typo\nchannels: []\ndependencies: 3\n")
    invalid = await nth_build(h, "typo", 1)
    assert invalid["status"] == "FAILED" and "dependencies" in invalid["status_info"]

    # fixing the file builds it
    (folder / "broken.yml").write_text(spec_text("broken", tiny_channel.url, "bar"))
    fixed = await nth_build(h, "broken", 2)
    assert fixed["status"] == "COMPLETED", fixed["status_info"]
    assert len(await filesystem_builds(h, "from-file")) == 2
    # the solver had the failed builds' SpecSubmitted long before the last build completed,
    # and left them alone: a build failed at submission is never started
    for build in (failed, invalid):
        history = await h.store.read_stream(f"build-{build['id']}")
        assert [e.type for e in history] == ["SpecSubmitted", "BuildFailed"]


async def test_a_change_builds_once_with_racing_scanners_and_after_a_restart(
    stack: Any, tmp_path: Path, tiny_channel: Any
) -> None:
    folder = tmp_path / "environments"
    folder.mkdir()
    env = folder / "env.yml"
    env.write_text(spec_text("raced", tiny_channel.url, "libfoo"))
    scanners = [PathWatcher(stack.store, [folder]) for _ in range(3)]
    results = await asyncio.gather(*(s.scan() for s in scanners))
    assert sorted(len(r) for r in results) == [0, 0, 1]
    # a scanner started afresh (a restart, a new leader) remembers through the event log
    assert await PathWatcher(stack.store, [folder]).scan() == []
    env.write_text(spec_text("raced", tiny_channel.url, "libfoo", "bar"))
    assert len(await PathWatcher(stack.store, [env]).scan()) == 1
    # back to the first content: a change too, so it is built again (as the file now says)
    env.write_text(spec_text("raced", tiny_channel.url, "libfoo"))
    assert len(await scanners[0].scan()) == 1
    await stack.projected()
    rows = await stack.store.pool.fetch(
        "SELECT id, status FROM builds WHERE namespace = 'filesystem' AND environment = 'raced'"
    )
    assert len(rows) == 3
