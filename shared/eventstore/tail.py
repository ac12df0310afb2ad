"""Tailing the log: batches after a position, woken by NOTIFY, with polling as a safety net."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg

from shared.aio import raise_if_cancelled
from shared.events import RecordedEvent

from .store import EventStore


class LogTailer:
    """Yields batches of events after ``position``; the caller advances ``position``."""

    def __init__(
        self, store: EventStore, position: int, batch_size: int = 500, poll_interval: float = 1.0
    ) -> None:
        self.store = store
        self.position = position
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        self._wakeup = asyncio.Event()
        self._conn: asyncpg.Connection | None = None

    def _notified(self, *_: object) -> None:
        self._wakeup.set()

    async def __aenter__(self) -> LogTailer:
        self._conn = await self.store.pool.acquire()
        await self._conn.add_listener("cs_events", self._notified)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._conn is not None:
            try:
                with contextlib.suppress(Exception):  # a dead connection has no listener left
                    await self._conn.remove_listener("cs_events", self._notified)
            finally:
                await self.store.pool.release(self._conn)

    async def batches(self) -> AsyncIterator[list[RecordedEvent]]:
        while True:
            raise_if_cancelled()
            self._wakeup.clear()
            batch = await self.store.read_all(self.position, self.batch_size)
            if batch:
                yield batch
                continue
            try:
                await asyncio.wait_for(self._wakeup.wait(), self.poll_interval)
            except TimeoutError:
                pass
