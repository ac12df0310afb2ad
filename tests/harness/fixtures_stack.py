"""An in-process stack for integration tests: relay, projector and the workers a test needs.

Services run as asyncio tasks against the real throwaway Postgres and NATS; tests that need
a service to die for real run it as a subprocess instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable

import asyncpg
import pytest

from shared.bus.consumer import ConsumerRunner, Worker
from shared.bus.jetstream import connect_nats
from shared.bus.relay import Relay
from shared.eventstore import EventStore
from shared.projections import Projector
from shared.projections.model import TERMINAL
from shared.projections.wait import wait_for_projection
from shared.settings import Settings

STOP_TIMEOUT_S = 20.0


class Stack:
    def __init__(self, store: EventStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.tasks: list[asyncio.Task[None]] = []
        self.clients: list = []

    async def _task(self, coro) -> None:  # type: ignore[no-untyped-def]
        self.tasks.append(asyncio.create_task(coro))

    async def start(self) -> Stack:
        nc = await connect_nats(self.settings.nats_url, "test-relay")
        self.clients.append(nc)
        await self._task(Relay(self.store, nc, self.settings).run())
        await self._task(Projector(self.store).run())
        return self

    async def run_workers(self, *workers: Worker, concurrency: int = 1) -> None:
        for worker in workers:
            nc = await connect_nats(self.settings.nats_url, f"test-{worker.name}")
            self.clients.append(nc)
            runner = ConsumerRunner(worker, self.store, nc, self.settings, concurrency)
            await self._task(runner.run())

    async def projected(self, timeout: float = 10.0) -> None:
        """Wait until everything appended so far is in the read model."""
        ok = await wait_for_projection(self.store, await self.store.last_position(), timeout)
        assert ok, "projector did not catch up"

    async def build(self, build_id: int) -> asyncpg.Record | None:
        return await self.store.pool.fetchrow("SELECT * FROM builds WHERE id = $1", build_id)

    async def wait_build(
        self, build_id: int, statuses: Iterable[str] = TERMINAL, timeout: float = 120.0
    ) -> asyncpg.Record:
        wanted = set(statuses)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            row = await self.build(build_id)
            if row is not None and row["status"] in wanted:
                return row
            if loop.time() > deadline:
                raise TimeoutError(f"build {build_id} is {row and row['status']}, not in {wanted}")
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        stuck: set[asyncio.Task[None]] = set()
        if self.tasks:
            done, stuck = await asyncio.wait(self.tasks, timeout=STOP_TIMEOUT_S)
            for task in done:
                if not task.cancelled():
                    task.exception()  # retrieve it, as gather(return_exceptions=True) did
        for nc in self.clients:
            await nc.close()
        # a service task that ignores its cancel would hang shutdown in production: fail loudly
        assert not stuck, f"tasks ignored their cancel: {[t.get_coro() for t in stuck]}"


@pytest.fixture
async def stack(event_store: EventStore, settings: Settings) -> AsyncIterator[Stack]:
    """Relay and projector running; call ``stack.run_workers(...)`` for the rest."""
    s = await Stack(event_store, settings).start()
    yield s
    await s.stop()
