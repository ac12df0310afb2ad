"""Beyond the contract: live logs over a real server, signed storage links, the event feed and
the audit subscriber, metrics, cursor paging, package search, the client's query-slash habit."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import httpx

from services.api.audit import run_audit
from shared.buildlog import BuildLog
from shared.embedded.ports import free_port
from shared.events import (
    BuildStarted,
    ChannelIndexed,
    ChannelRecord,
    NamespaceCreated,
    stream_of_channel,
)
from tests.fixtures.api import ApiHarness, api, seed_env, spec_event  # noqa: F401
from tests.harness.serving import serve_healthy


async def world(h: ApiHarness) -> None:
    await seed_env(h, "default", "e1", 1, 2)
    await seed_env(h, "alice", "e1", 3, 4)
    await seed_env(h, "bob", "e1", 5, 6)
    await h.store.pool.execute("SELECT setval('build_id_seq', 6)")
    await h.projected()


async def test_event_feed_is_filtered_by_bindings(api: ApiHarness) -> None:  # noqa: F811
    await world(api)
    alice = api.auth("alice", {"alice/*": ["viewer"]})
    seen: list[dict[str, Any]] = []
    after = 0
    while True:
        r = await api.client.get(f"/api/v1/events/?after={after}&limit=5", headers=alice)
        body = r.json()
        if not body["data"]:
            break
        seen += body["data"]
        after = body["next_after"]
    namespaces = {e["data"].get("namespace") for e in seen} - {None}
    assert namespaces == {"default", "alice"}
    builds = {e["data"]["build_id"] for e in seen if "build_id" in e["data"]}
    assert builds == {1, 2, 3, 4}
    everything = (await api.client.get("/api/v1/events/?limit=1000", headers=api.admin())).json()
    assert len(everything["data"]) == await api.store.last_position()


async def test_audit_prints_who_did_what(api: ApiHarness, capsys: Any) -> None:  # noqa: F811
    await api.append("namespace-x", NamespaceCreated(namespace="x"))
    await api.projected()
    await asyncio.sleep(0.3)  # the relay publishes to JetStream
    seq = await api.store.last_position()  # the relay publishes the whole log, in order
    printed = await asyncio.wait_for(run_audit(api.state.settings, since_seq=seq, limit=1), 10)
    assert printed == 1
    assert "seed NamespaceCreated x" in capsys.readouterr().out


async def test_live_log_streams_until_terminal(api: ApiHarness, tmp_path: Any) -> None:  # noqa: F811
    from services.api.app import create_app

    await world(api)
    await api.append("build-2", BuildStarted(build_id=2))
    await BuildLog(api.store.pool, 2).write("solve", "first line")
    await api.projected()
    app = create_app(api.state.settings, store=api.store)
    port = free_port()
    server, stop = await serve_healthy(app, port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=20) as client:
            chunks: list[str] = []
            async with client.stream(
                "GET", "/api/v1/build/2/logs/", headers=api.admin()
            ) as response:
                assert response.status_code == 200
                iterator = response.aiter_text()
                chunks.append(await anext(iterator))
                assert "first line" in chunks[0]
                await BuildLog(api.store.pool, 2).write("pack", "second line")
                chunks.append(await anext(iterator))
                assert "[pack] second line" in chunks[1]
                r = await api.client.put("/api/v1/build/2/cancel/", headers=api.admin())
                assert r.json() == {"status": "ok", "message": "build 2 canceled"}
                async for chunk in iterator:
                    chunks.append(chunk)
            assert "marked as CANCELED" in "".join(chunks)
    finally:
        stop.set()
        await server


async def test_storage_links_metrics_and_query_slash(api: ApiHarness) -> None:  # noqa: F811
    await world(api)
    admin = api.admin()
    r = await api.client.get("/api/v1/build/1/archive/", headers=admin)
    assert r.status_code == 307 and r.headers["location"].startswith("/storage/builds/1/")
    link = r.headers["location"]
    got = await api.client.get(link)
    assert got.status_code == 200 and got.content == b"content of builds/1/archive.tar.gz"
    part = await api.client.get(link, headers={"Range": "bytes=0-6"})
    assert part.status_code == 206 and part.content == b"content"
    tampered = link.replace("archive.tar.gz", "logs.txt")
    assert (await api.client.get(tampered)).status_code == 403

    r = await api.client.get("/api/v1/build/?status=COMPLETED/", headers=admin)
    assert r.status_code == 200 and {b["id"] for b in r.json()["data"]} == {1, 3, 5}
    r = await api.client.get("/api/v1/build?status=QUEUED", headers=admin)
    assert r.status_code == 307 and r.headers["location"].endswith("/api/v1/build/?status=QUEUED")

    text = (await api.client.get("/metrics")).text
    assert "conda_store_build_completed 3" in text and "conda_store_queue_depth 3" in text
    assert "conda_store_environments 3" in text
    assert (await api.client.get("/docs")).status_code == 200


async def test_v2_cursor_and_package_search(api: ApiHarness) -> None:  # noqa: F811
    await api.append("namespace-default", NamespaceCreated(namespace="default"))
    for i in range(1, 6):
        await api.append(f"build-{i}", spec_event(i, "default", f"env{6 - i}", ["x"]))
    await world_packages(api)
    await api.projected()
    names: list[str] = []
    cursor = None
    while True:
        url = "/api/v2/environment/?limit=2&sort_by=name"
        r = await api.client.get(url + (f"&cursor={cursor}" if cursor else ""))
        body = r.json()
        assert body["count"] == 5
        if not body["data"]:
            assert json.loads(base64.b64decode(body["cursor"])) == {
                "last_id": None,
                "last_value": None,
            }
            break
        names += [e["name"] for e in body["data"]]
        cursor = body["cursor"]
    assert names == ["env1", "env2", "env3", "env4", "env5"]

    r = await api.client.get("/api/v1/package/?search=nump&distinct_on=name")
    assert [p["name"] for p in r.json()["data"]] == ["numpy"]
    r = await api.client.get("/api/v1/package/?search=numpy&exact=1&sort_by=version&order=desc")
    assert [p["version"] for p in r.json()["data"]] == ["2.0", "1.0"]
    r = await api.client.get("/api/v1/package/?search=numpy&build=py312")
    assert [p["version"] for p in r.json()["data"]] == ["2.0"]
    r = await api.client.get("/api/v1/package/?build=_0")
    assert {(p["name"], p["version"]) for p in r.json()["data"]} == {("numpy", "1.0")}
    assert r.json()["count"] == 1
    r = await api.client.get("/api/v1/package/?build=%25")  # a literal %, not a wildcard
    assert r.json()["count"] == 0
    r = await api.client.get("/api/v1/channel/")
    assert r.json()["count"] == 1


async def world_packages(h: ApiHarness) -> None:
    from shared.events import PackageRef, Solved

    for build_id, version, build in ((1, "1.0", "py311_0"), (2, "2.0", "py312_1")):
        await h.append(
            f"build-{build_id}",
            Solved(
                build_id=build_id,
                lockfile_key=f"b/{build_id}/l",
                yaml_key=f"b/{build_id}/y",
                packages=[
                    PackageRef(
                        name="numpy", version=version, build=build, channel="https://c/conda-forge"
                    ),
                    PackageRef(
                        name="python", version="3.11", build="h1", channel="https://c/conda-forge"
                    ),
                ],
            ),
        )


async def test_package_index_follows_the_solvers_channel_changes(api: ApiHarness) -> None:  # noqa: F811
    """The projector folds ChannelIndexed into /channel/ and /package/: records of a channel
    no build used are listed, and a build string that left the channel stops matching."""
    channel = "https://c/extra"
    stream = stream_of_channel(channel, "linux-64")
    first = [
        ChannelRecord(name="scipy", version="1.14", build="py311h0_0", license="BSD-3-Clause"),
        ChannelRecord(name="scipy", version="1.14", build="py312h0_0", license="BSD-3-Clause"),
        ChannelRecord(name="six", version="1.16", build="pyh0_0"),
    ]
    await api.append(
        stream, ChannelIndexed(channel=channel, subdir="linux-64", fingerprint="1", added=first)
    )
    await api.projected()
    r = await api.client.get("/api/v1/package/?search=scipy")
    assert [(p["name"], p["version"], p["license"]) for p in r.json()["data"]] == [
        ("scipy", "1.14", "BSD-3-Clause")
    ]  # one row per (channel, name, version), as conda-store's
    r = await api.client.get("/api/v1/channel/")
    assert [c["name"] for c in r.json()["data"]] == [channel]
    r = await api.client.get("/api/v1/package/?build=py312")
    assert [p["name"] for p in r.json()["data"]] == ["scipy"]

    gone = ChannelIndexed(channel=channel, subdir="linux-64", fingerprint="2", removed=first[1:2])
    await api.append(stream, gone)
    await api.projected()
    assert (await api.client.get("/api/v1/package/?build=py312")).json()["count"] == 0
    assert (await api.client.get("/api/v1/package/?build=py311")).json()["count"] == 1
    rows = await api.store.pool.fetch("SELECT build FROM conda_package_builds ORDER BY build")
    assert [r["build"] for r in rows] == ["py311h0_0", "pyh0_0"]
