"""The projector: folds the event log into the read-model tables, exactly once per event.

Rows and the projector's position commit in one transaction, so a crash replays only what was
not yet written. One projector runs at a time (advisory-lock leadership).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import asyncpg

from shared.events import MessageParked, RecordedEvent, new_event
from shared.eventstore import Append, EventStore
from shared.eventstore.leader import DEFAULT_LEASE_S, Lease, leadership, run_as_leader
from shared.eventstore.tail import LogTailer
from shared.logging import get_logger

from .channel_index import EVENT_TYPE as CHANNEL_INDEXED
from .channel_index import apply_channel_index
from .model import ReadModel
from .store import create_tables, drop_tables, load_model, write_dirty
from .update_checks import CHECKED, REQUESTED, apply_update_check

POSITION_NAME = "projector"
log = get_logger(__name__)


def apply_or_park(model: ReadModel, event: RecordedEvent) -> tuple[RecordedEvent, str] | None:
    """Apply one event; an event the fold cannot use is logged and returned, never fatal."""
    try:
        model.apply(event)
    except Exception as exc:
        return _unusable(event, exc)
    return None


SqlFold = Callable[[asyncpg.Connection, RecordedEvent], Awaitable[None]]
SQL_FOLDS: dict[str, SqlFold] = {
    CHANNEL_INDEXED: apply_channel_index,
    REQUESTED: apply_update_check,
    CHECKED: apply_update_check,
}
"""Events folded straight into their own tables with SQL rather than through the in-memory
model (the package index, the update checks): rows without relations to the rest."""


async def sql_fold_or_park(
    conn: asyncpg.Connection, event: RecordedEvent
) -> tuple[RecordedEvent, str] | None:
    """``apply_or_park`` for an event of ``SQL_FOLDS`` (in a savepoint of the batch's
    transaction, so an unusable one is undone alone); a lost connection still propagates."""
    try:
        async with conn.transaction():
            await SQL_FOLDS[event.type](conn, event)
    except (ValueError, asyncpg.DataError) as exc:
        return _unusable(event, exc)
    return None


def _unusable(event: RecordedEvent, exc: Exception) -> tuple[RecordedEvent, str]:
    error = f"{type(exc).__name__}: {exc}"
    log.error(
        "projection skipped an unusable event",
        event_id=str(event.event_id),
        event_type=event.type,
        global_position=event.global_position,
        error=error,
    )
    return event, error


async def park(store: EventStore, event: RecordedEvent, error: str) -> None:
    """Record the skipped event once (tracked by event id, so replays do not repeat it)."""
    parked = new_event(
        MessageParked(
            consumer=POSITION_NAME,
            subject=event.type,
            stream_sequence=event.global_position,
            error=error[:2000],
            payload=event.model_dump_json()[:10000],
        )
    )
    await store.append_many(
        [Append(f"parked-{POSITION_NAME}", [parked])],
        tracking=(POSITION_NAME, str(event.event_id)),
    )


class Projector:
    def __init__(
        self, store: EventStore, batch_size: int = 2000, lease_s: float = DEFAULT_LEASE_S
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        self.lease_s = lease_s
        self.model = ReadModel()
        self.position = 0
        self.caught_up = asyncio.Event()

    async def load(self) -> None:
        async with self.store.pool.acquire() as conn:
            await create_tables(conn)
            self.model = await load_model(conn)
            self.position = await self.store.load_position(POSITION_NAME, conn)

    async def run(self) -> None:
        """Project forever; if Postgres goes away, reconnect, reload the model and resume."""
        await run_as_leader(self.store, POSITION_NAME, self._project, self.lease_s)

    async def _project(self, lease: Lease) -> None:
        await self.load()  # the last leader's rows and position, committed before our term
        log.info("projector started", position=self.position, term=lease.term)
        async with LogTailer(self.store, self.position, self.batch_size) as tailer:
            async for batch in tailer.batches():
                parked = [p for event in batch if (p := apply_or_park(self.model, event))]
                last = batch[-1].global_position
                async with lease.fenced(self.store) as conn:
                    await write_dirty(conn, self.model, self.model.take_dirty())
                    for event in batch:
                        if event.type in SQL_FOLDS and (p := await sql_fold_or_park(conn, event)):
                            parked.append(p)
                    await self.store.save_position(POSITION_NAME, last, conn)
                    await conn.execute("SELECT pg_notify('cs_projection', $1)", str(last))
                tailer.position = self.position = last
                for event, error in parked:
                    await park(self.store, event, error)


async def rebuild_projections(store: EventStore, batch_size: int = 20000) -> tuple[int, float]:
    """Drop the read model and replay the whole log into it; returns (events, seconds).

    Runs under the projector's leadership so a live projector cannot interleave writes.
    """
    started = time.perf_counter()
    count = 0
    async with leadership(store, POSITION_NAME) as lease:
        model = ReadModel()
        position = 0
        async with store.transaction() as conn:
            await drop_tables(conn)
            await create_tables(conn)
            async for event in store.iterate_all(batch_size):
                if event.type in SQL_FOLDS:
                    await sql_fold_or_park(conn, event)
                else:
                    apply_or_park(model, event)
                position = event.global_position
                count += 1
            await write_dirty(conn, model, model.take_dirty())
            await lease.check(conn)  # commit only if no other projector took over meanwhile
            await store.save_position(POSITION_NAME, position, conn)
    return count, time.perf_counter() - started
