"""The lease that fences a worker's attempt, against a Postgres that is killed and restarted.

A worker here sleeps through its work; the consumer runs in-process against a real NATS and a
Postgres cluster of the test's own (the session's shared one must not be killed).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path

import pytest

from shared.bus.consumer import ConsumerRunner, HandlerContext, Worker
from shared.bus.jetstream import connect_nats
from shared.bus.relay import Relay
from shared.embedded.nats import NatsServer
from shared.embedded.postgres import PostgresCluster
from shared.events import NamespaceMetadataSet, RecordedEvent, SettingsChanged, new_event
from shared.eventstore import Append, EventStore
from shared.eventstore.leases import Lease, Leases
from shared.settings import Settings
from tests.harness.processes import kill_postgres, restart_postgres


class SlowWorker(Worker):
    """Works for ``seconds``, then records one result; remembers how each attempt ended."""

    name = "slow"
    event_types = ("SettingsChanged",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.outcomes: dict[int, str] = {}
        self.started = asyncio.Event()

    async def handle(self, event: RecordedEvent, ctx: HandlerContext) -> Sequence[Append]:
        self.outcomes[ctx.attempt] = "running"
        self.started.set()
        try:
            await asyncio.sleep(self.seconds)
        except asyncio.CancelledError:
            self.outcomes[ctx.attempt] = "cancelled"
            raise
        self.outcomes[ctx.attempt] = "finished"
        result = NamespaceMetadataSet(namespace="results", metadata={"attempt": ctx.attempt})
        return [Append("results", [new_event(result, causation=event)])]


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    root = Path(tempfile.mkdtemp(prefix="cs-lease-pg-"))
    cluster = PostgresCluster(root / "data")  # durable: "fast" loses commits on a crash
    cluster.start()
    yield cluster
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def run_worker(
    own_postgres: PostgresCluster, nats_server: NatsServer, tmp_path: Path
) -> AsyncIterator[Callable]:
    """Start relay and one consumer of ``worker`` with ack wait (= lease term) ``term_s``."""
    tasks: list[asyncio.Task] = []
    closers: list = []

    async def run(worker: Worker, term_s: float) -> EventStore:
        url = await own_postgres.create_database("leases")
        settings = Settings(
            data_dir=tmp_path / "data",
            database_url=url,
            nats_url=nats_server.url,
            consumer_ack_wait_s=term_s,
            consumer_max_deliver=3,
        )
        store = await EventStore.connect(url)
        relay_nc = await connect_nats(settings.nats_url, "relay")
        worker_nc = await connect_nats(settings.nats_url, "worker")
        closers.extend([relay_nc.close, worker_nc.close, store.close])
        tasks.append(asyncio.create_task(Relay(store, relay_nc, settings).run()))
        runner = ConsumerRunner(worker, store, worker_nc, settings, concurrency=2)
        tasks.append(asyncio.create_task(runner.run()))
        return store

    yield run
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for close in closers:
        await close()


async def results(store: EventStore, timeout: float = 60) -> list[int]:
    """Attempts whose result was recorded, once one was (the store may be restarting)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            recorded = await store.read_stream("results")
        except Exception:
            recorded = []
        if recorded:
            await asyncio.sleep(1.0)  # a second result, if any, shows itself
            return [e.data["metadata"]["attempt"] for e in await store.read_stream("results")]
        assert loop.time() < deadline, "no result was recorded"
        await asyncio.sleep(0.1)


async def submit(store: EventStore) -> RecordedEvent:
    [event] = await store.append("work", [new_event(SettingsChanged(values={"n": 1}))])
    return event


async def test_a_stale_attempt_cannot_commit_after_another_took_its_lease(run_worker) -> None:
    worker = SlowWorker(seconds=2)
    store = await run_worker(worker, term_s=9)  # renewed every 3 s: too late to notice
    event = await submit(store)
    await asyncio.wait_for(worker.started.wait(), 30)
    # Another machine takes over: the lease expired there, as if this holder had stalled.
    await store.pool.execute("UPDATE leases SET expires_at = clock_timestamp()")
    leases = Leases(store, term_s=9)
    taken = await leases.acquire("slow", str(event.event_id), "elsewhere")
    assert isinstance(taken, Lease) and taken.attempt == 2

    while worker.outcomes.get(1) != "finished":
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)
    assert await store.read_stream("results") == []  # attempt 1's commit was fenced off
    assert not await store.is_tracked("slow", str(event.event_id))

    await leases.release(taken)  # the other machine failed and let go
    assert await results(store) == [3]
    assert worker.outcomes == {1: "finished", 3: "finished"}


async def test_work_finished_while_postgres_restarts_is_committed_by_the_same_attempt(
    run_worker, own_postgres: PostgresCluster
) -> None:
    """Postgres is away when the work ends, and back within the lease: the attempt keeps its
    lease and commits when it can, instead of throwing the work away and doing it again."""
    worker = SlowWorker(seconds=2)
    store = await run_worker(worker, term_s=12)
    await submit(store)
    await asyncio.wait_for(worker.started.wait(), 30)
    await asyncio.to_thread(kill_postgres, own_postgres)
    await asyncio.sleep(4.0)  # the work ends meanwhile
    assert worker.outcomes == {1: "finished"}
    await asyncio.to_thread(restart_postgres, own_postgres)

    assert await results(store) == [1]
    assert worker.outcomes == {1: "finished"}


async def test_postgres_down_longer_than_the_lease_stops_the_attempt_and_retries_once(
    run_worker, own_postgres: PostgresCluster
) -> None:
    worker = SlowWorker(seconds=10)
    store = await run_worker(worker, term_s=3)
    await submit(store)
    await asyncio.wait_for(worker.started.wait(), 30)
    await asyncio.to_thread(kill_postgres, own_postgres)
    await asyncio.sleep(7.0)  # twice the term: the holder must assume it lost the lease
    assert worker.outcomes == {1: "cancelled"}
    await asyncio.to_thread(restart_postgres, own_postgres)

    assert await results(store) == [2]
    assert worker.outcomes == {1: "cancelled", 2: "finished"}
