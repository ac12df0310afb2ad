"""`conda-store-server up` keeps its stack alive: Postgres and nats-server killed under it come
back with the same data, services reconnect in-process, and restarts never wait on each other.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable

import httpx
import yaml

from shared.eventstore import EventStore
from shared.spec import parse_specification
from shared.submission import submit_specification
from tests.channels.server import ServedChannel
from tests.harness.embedded_stack import EmbeddedStack

TERMINAL = ("Packed", "BuildFailed", "BuildCanceled")


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


async def connect(url: str, timeout: float = 60) -> EventStore:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            return await EventStore.connect(url, migrate=False)
        except Exception:
            assert loop.time() < deadline, "Postgres did not come back"
            await asyncio.sleep(0.3)


async def build(url: str, channel: ServedChannel, name: str, timeout: float = 180) -> str:
    """Submit a build (retrying while Postgres restarts) and wait until it is terminal."""
    text = yaml.safe_dump({"name": name, "channels": [channel.url], "dependencies": ["bar"]})
    store = await connect(url)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            try:
                build_id = (
                    await submit_specification(store, parse_specification(text), "default")
                ).build_id
                break
            except Exception:
                assert loop.time() < deadline, "could not submit"
                await asyncio.sleep(0.3)
        while True:
            try:
                status = await store.pool.fetchval(
                    "SELECT status FROM builds WHERE id = $1", build_id
                )
            except Exception:
                status = None
            if status in ("COMPLETED", "FAILED", "CANCELED"):
                return str(status)
            assert loop.time() < deadline, f"build {build_id} stayed {status}"
            await asyncio.sleep(0.2)
    finally:
        await store.close()


def api_statuses_until_ok(url: str, timeout: float = 60) -> list[int]:
    """GET ``url`` until it answers 200; every status seen on the way."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    while not seen or seen[-1] != 200:
        assert time.monotonic() < deadline, f"{url} did not recover: {seen[-5:]}"
        try:
            seen.append(httpx.get(url, timeout=5).status_code)
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    return seen


async def terminal_counts(url: str) -> dict[str, int]:
    store = await connect(url)
    try:
        rows = await store.pool.fetch(
            "SELECT stream, count(*) FILTER (WHERE type = ANY($1)) AS n FROM events"
            " WHERE stream LIKE 'build-%' GROUP BY stream",
            list(TERMINAL),
        )
    finally:
        await store.close()
    return {r["stream"]: r["n"] for r in rows}


async def test_postgres_and_nats_killed_under_up_come_back_and_builds_go_on(
    tiny_channel: ServedChannel,
) -> None:
    with EmbeddedStack.start() as stack:
        url = stack.database_url
        assert await build(url, tiny_channel, "before") == "COMPLETED"
        services = stack.children()

        old_postmaster = stack.postmaster_pid()
        assert old_postmaster is not None
        os.kill(old_postmaster, signal.SIGKILL)
        statuses = api_statuses_until_ok(f"{stack.api_url}/api/v1/namespace/")
        assert 500 not in statuses, statuses  # 503 while Postgres is away, then 200
        wait_for(lambda: stack.postmaster_pid() not in (None, old_postmaster), "postgres back")
        assert await build(url, tiny_channel, "after-postgres") == "COMPLETED"
        now = stack.children()
        for name in ("relay", "projector"):  # reconnected in-process, not restarted
            assert now[name] == services[name], f"{name} was restarted"

        os.kill(now["nats"], signal.SIGKILL)
        wait_for(lambda: stack.children().get("nats") not in (None, now["nats"]), "nats back")
        assert await build(url, tiny_channel, "after-nats") == "COMPLETED"

        counts = await terminal_counts(url)
        assert len(counts) == 3 and set(counts.values()) == {1}, counts
        output = stack.stop()
        assert stack.proc is not None and stack.proc.returncode == 0, output
    assert "postgres is not running" in output and "nats exited" in output


def test_a_service_in_a_crash_loop_does_not_delay_restarting_another() -> None:
    """The solver (checked before the ui on every round) keeps dying; the ui dies once."""
    with EmbeddedStack.start() as stack:
        for _ in range(4):  # quick exits: the solver's restarts back off, 1, 2, 4 then 8 s
            solver = stack.children()["solver"]
            os.kill(solver, signal.SIGKILL)
            wait_for(lambda s=solver: stack.children().get("solver") not in (None, s), "solver")
        solver = stack.children()["solver"]
        ui = stack.children()["ui"]
        os.kill(solver, signal.SIGKILL)
        os.kill(ui, signal.SIGKILL)
        wait_for(lambda: stack.children().get("ui") not in (None, ui), "ui back")
        assert "solver" not in stack.children(), "the solver's backoff should still be running"
        wait_for(lambda: stack.children().get("solver") not in (None, solver), "solver back", 30)
        output = stack.stop()
        assert stack.proc is not None and stack.proc.returncode == 0, output
