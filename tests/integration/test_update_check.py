"""The update check against the real stack: a build of a channel that later gains a newer
version, a check on request answered by the solver without building, the schedule, and the
rebuild that takes the update."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from services.api.update_schedule import UpdateSchedule
from shared.events import stream_of_environment
from tests.channels.condapkg import PackageMeta, build_package, index_channel
from tests.channels.server import ChannelServer
from tests.fixtures.api import ApiHarness, api  # noqa: F401


class Channel:
    def __init__(self, root: Path, url: str) -> None:
        self.root, self.url = root, url

    def publish(self, version: str) -> None:
        build_package(PackageMeta("upd-lib", version, "h0_0"), self.root / "stage", self.root)
        index_channel(self.root)


@pytest.fixture
def channel(tmp_path: Path) -> Iterator[Channel]:
    root = tmp_path / "channel"
    (root / "noarch").mkdir(parents=True)
    found = Channel(root, "")
    found.publish("1.0")
    with ChannelServer(root) as server:
        found.url = server.url
        yield found


async def start_workers(h: ApiHarness) -> None:
    from services.packer.worker import PackerWorker
    from services.solver.resolve import Resolver
    from services.solver.updates import UpdateChecker
    from services.solver.worker import SolverWorker

    arts, pool = h.state.artifacts, h.store.pool
    settings = h.state.settings.model_copy(update={"repodata_ttl_s": 0.0})  # see new versions
    resolver = Resolver.from_settings(settings, pool)
    await h.stack.run_workers(
        SolverWorker(resolver, arts, pool),
        PackerWorker(settings, arts, pool),
        UpdateChecker(resolver),
    )


async def checked(h: ApiHarness, headers: dict[str, str], timeout: float = 60) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        data = (await h.client.get("/api/v1/environment/team/upd/updates/", headers=headers)).json()
        if data["data"]["checked_on"] and not data["data"]["pending"]:
            return data["data"]
        assert loop.time() < deadline, data
        await asyncio.sleep(0.1)


async def test_update_check_on_request_and_on_schedule_then_rebuild(
    api: ApiHarness,  # noqa: F811
    channel: Channel,
) -> None:
    await start_workers(api)
    admin = api.admin()
    spec = f"name: upd\nchannels:\n  - {channel.url}\ndependencies:\n  - upd-lib\n"
    r = await api.client.post(
        "/api/v1/specification/", json={"namespace": "team", "specification": spec}, headers=admin
    )
    first = r.json()["data"]["build_id"]
    assert (await api.stack.wait_build(first))["status"] == "COMPLETED"
    await api.projected()
    url = "/api/v1/environment/team/upd/updates/"
    never = (await api.client.get(url, headers=admin)).json()["data"]
    assert never["build_id"] == first and never["checked_on"] is None and never["count"] == 0

    # nothing newer yet: the check answers from the solve cache, no update
    r = await api.client.post(url, headers=admin)
    assert r.status_code == 200 and r.json()["data"]["pending"] is True, r.text
    first_check = await checked(api, admin)
    assert first_check["count"] == 0, first_check["updates"]

    # the channel gains 1.1: the check says so, and nothing is built
    channel.publish("1.1")
    builds_before = await api.store.pool.fetchval("SELECT count(*) FROM builds")
    await api.client.post(url, headers=admin)
    result = await checked(api, admin)
    assert result["updates"] == [
        {"manager": "conda", "name": "upd-lib", "version": "1.0", "newer": "1.1"}
    ], result
    assert result["count"] == 1 and result["error"] is None
    assert await api.store.pool.fetchval("SELECT count(*) FROM builds") == builds_before
    history = await api.store.read_stream(stream_of_environment("team", "upd"))
    kinds = [e.type for e in history]
    assert kinds.count("UpdateCheckRequested") == 2 and kinds.count("UpdateChecked") == 2

    # the schedule asks only for environments not checked within its interval
    assert await UpdateSchedule(api.store, 3600).run_once() == 0
    schedule = UpdateSchedule(api.store, 0.001)
    schedule.interval = timedelta(microseconds=1)
    assert await schedule.run_once() == 1
    await checked(api, admin)
    history = await api.store.read_stream(stream_of_environment("team", "upd"))
    reasons = [e.data["reason"] for e in history if e.type == "UpdateCheckRequested"]
    assert reasons == ["request", "request", "schedule"]

    # one click: the rebuild takes the update, and the new current build has none pending
    r = await api.client.put(f"/api/v1/build/{first}/", headers=admin)
    second = r.json()["data"]["build_id"]
    assert (await api.stack.wait_build(second))["status"] == "COMPLETED"
    await api.projected()
    packages = await api.client.get(f"/api/v1/build/{second}/packages/", headers=admin)
    assert [(p["name"], p["version"]) for p in packages.json()["data"]] == [("upd-lib", "1.1")]
    fresh = (await api.client.get(url, headers=admin)).json()["data"]
    assert fresh["build_id"] == second and fresh["count"] == 0 and fresh["checked_on"] is None

    # permissions and bad targets
    assert (await api.client.post(url)).status_code in (401, 403)
    missing = await api.client.post("/api/v1/environment/team/nope/updates/", headers=admin)
    assert missing.status_code == 404
