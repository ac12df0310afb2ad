"""Event store on Postgres: append with optimistic concurrency, read a stream, tail the log."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared.events import EventMetadata, NewEvent, RecordedEvent
from shared.logging import get_logger

from .errors import ConcurrencyError, EventTooLarge
from .migrate import apply_migrations

log = get_logger(__name__)

NO_STREAM = 0
"""Pass as ``expected_version`` to require that the stream does not exist yet."""

MAX_EVENT_BYTES = 768 * 1024
"""The largest event the store takes (its JSON row). The relay publishes every event as one
NATS message, whose default limit is 1 MiB; the rest is room for the envelope and headers.
A bigger event could never reach the workers, so it is refused before it is written."""

_COLUMNS = (
    "global_position, stream, version, event_id, type, schema_version, data, metadata, "
    "occurred_at, recorded_at"
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for typ in ("jsonb", "json"):
        await conn.set_type_codec(typ, encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _release_as_is(conn: asyncpg.Connection) -> None:
    """What the pool runs on a released connection, after asyncpg's own cleanup (rolling back
    an open transaction, dropping listener callbacks).

    asyncpg's default also sends ``UNLISTEN *; RESET ALL; pg_advisory_unlock_all()...``: a
    round trip on every pool use, a fifth of the API's CPU under load. Nothing here sets
    session state that outlives its user: LISTENs and session advisory locks are undone by
    their holders in ``finally`` blocks, and no code runs ``SET``."""


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, reset=_release_as_is
    )


def record_from_row(row: asyncpg.Record) -> RecordedEvent:
    return RecordedEvent(
        global_position=row["global_position"],
        stream=row["stream"],
        version=row["version"],
        event_id=row["event_id"],
        type=row["type"],
        schema_version=row["schema_version"],
        data=row["data"],
        metadata=EventMetadata.model_validate(row["metadata"] or {}),
        occurred_at=row["occurred_at"],
        recorded_at=row["recorded_at"],
    )


@dataclass(frozen=True)
class Append:
    """One stream's share of an atomic write."""

    stream: str
    events: Sequence[NewEvent]
    expected_version: int | None = None


class EventStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(
        cls, dsn: str, *, min_size: int = 1, max_size: int = 10, migrate: bool = True
    ) -> EventStore:
        pool = await create_pool(dsn, min_size=min_size, max_size=max_size)
        store = cls(pool)
        if migrate:
            async with pool.acquire() as conn:
                await apply_migrations(conn)
        return store

    async def close(self, timeout: float = 10.0) -> None:
        """Close the pool; a connection still held after ``timeout`` (a task that ignored its
        cancel) is terminated so shutdown never hangs on it."""
        try:
            await asyncio.wait_for(self.pool.close(), timeout)
        except TimeoutError:
            log.warning("event store connections still in use at close; terminating them")
            self.pool.terminate()

    # --- writing ---------------------------------------------------------------------------

    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: int | None = None,
        *,
        conn: asyncpg.Connection | None = None,
    ) -> list[RecordedEvent]:
        """Append events to one stream atomically; ``expected_version=None`` accepts any."""
        if not events:
            return []
        payload = [e.row() for e in events]
        check_sizes(payload)
        try:
            if conn is None:
                async with self.pool.acquire() as c:
                    rows = await c.fetch(
                        "SELECT * FROM append_events($1, $2, $3)", stream, expected_version, payload
                    )
            else:
                rows = await conn.fetch(
                    "SELECT * FROM append_events($1, $2, $3)", stream, expected_version, payload
                )
        except asyncpg.PostgresError as exc:
            if getattr(exc, "sqlstate", None) == "CS001":
                raise ConcurrencyError(stream, expected_version, int(exc.detail or 0)) from exc
            if isinstance(exc, asyncpg.UniqueViolationError) and "stream" in str(exc):
                raise ConcurrencyError(stream, expected_version, -1) from exc
            raise
        return [
            RecordedEvent(
                global_position=row["global_position"],
                stream=stream,
                version=row["version"],
                event_id=ev.event_id,
                type=ev.type,
                schema_version=ev.data.schema_version,
                data=raw["data"],
                metadata=ev.metadata,
                occurred_at=ev.occurred_at,
                recorded_at=row["recorded_at"],
            )
            for row, ev, raw in zip(rows, events, payload, strict=True)
        ]

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection inside a transaction, for appends that must commit together."""
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def append_many(
        self,
        appends: Sequence[Append],
        *,
        tracking: tuple[str, str] | None = None,
        fence: Callable[[asyncpg.Connection], Awaitable[object]] | None = None,
    ) -> list[RecordedEvent] | None:
        """Append to several streams in one transaction.

        With ``tracking=(consumer, message_key)`` the tracking record is written in the same
        transaction; if it already exists nothing is appended and None is returned. ``fence``
        runs first in the transaction and aborts it by raising (a worker that lost its lease).
        """
        async with self.transaction() as conn:
            if fence is not None:
                await fence(conn)
            if tracking is not None:
                inserted = await conn.fetchval(
                    "INSERT INTO tracking (consumer, message_key) VALUES ($1, $2) "
                    "ON CONFLICT DO NOTHING RETURNING 1",
                    *tracking,
                )
                if not inserted:
                    return None
            recorded: list[RecordedEvent] = []
            for a in appends:
                recorded += await self.append(a.stream, a.events, a.expected_version, conn=conn)
            return recorded

    async def is_tracked(self, consumer: str, message_key: str) -> bool:
        return bool(
            await self.pool.fetchval(
                "SELECT 1 FROM tracking WHERE consumer = $1 AND message_key = $2",
                consumer,
                message_key,
            )
        )

    async def next_build_id(self) -> int:
        return int(await self.pool.fetchval("SELECT nextval('build_id_seq')"))

    # --- reading ---------------------------------------------------------------------------

    async def read_stream(self, stream: str, from_version: int = 1) -> list[RecordedEvent]:
        rows = await self.pool.fetch(
            f"SELECT {_COLUMNS} FROM events WHERE stream = $1 AND version >= $2 ORDER BY version",
            stream,
            from_version,
        )
        return [record_from_row(r) for r in rows]

    async def stream_version(self, stream: str) -> int:
        return int(
            await self.pool.fetchval(
                "SELECT coalesce(max(version), 0) FROM events WHERE stream = $1", stream
            )
        )

    async def read_all(
        self, after_position: int = 0, limit: int = 1000, types: Sequence[str] | None = None
    ) -> list[RecordedEvent]:
        """Events after a global position, in position (= commit) order."""
        if types:
            rows = await self.pool.fetch(
                f"SELECT {_COLUMNS} FROM events WHERE global_position > $1 AND type = ANY($3) "
                "ORDER BY global_position LIMIT $2",
                after_position,
                limit,
                list(types),
            )
        else:
            rows = await self.pool.fetch(
                f"SELECT {_COLUMNS} FROM events WHERE global_position > $1 "
                "ORDER BY global_position LIMIT $2",
                after_position,
                limit,
            )
        return [record_from_row(r) for r in rows]

    async def last_position(self) -> int:
        return int(await self.pool.fetchval("SELECT coalesce(max(global_position), 0) FROM events"))

    async def iterate_all(self, batch_size: int = 20000) -> AsyncIterator[RecordedEvent]:
        """Every event in position order through one server-side cursor (a replay of the
        whole log without holding it in memory, and in one snapshot: appends made meanwhile
        are not seen)."""
        async with self.pool.acquire() as reader, reader.transaction():
            cursor = reader.cursor(
                f"SELECT {_COLUMNS} FROM events ORDER BY global_position", prefetch=batch_size
            )
            async for row in cursor:
                yield record_from_row(row)

    # --- reader positions ------------------------------------------------------------------

    async def load_position(self, name: str, conn: asyncpg.Connection | None = None) -> int:
        q = "SELECT position FROM positions WHERE name = $1"
        value = await (conn or self.pool).fetchval(q, name)
        return int(value or 0)

    async def save_position(
        self, name: str, position: int, conn: asyncpg.Connection | None = None
    ) -> None:
        await (conn or self.pool).execute(
            "INSERT INTO positions (name, position) VALUES ($1, $2) "
            "ON CONFLICT (name) DO UPDATE SET position = excluded.position",
            name,
            position,
        )


def check_sizes(rows: Sequence[dict[str, Any]]) -> None:
    """Refuse an event row over ``MAX_EVENT_BYTES`` before anything is written."""
    for row in rows:
        size = len(dump_json(row).encode())
        if size > MAX_EVENT_BYTES:
            raise EventTooLarge(row["type"], size, MAX_EVENT_BYTES)


def dump_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
