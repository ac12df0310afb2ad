"""Tell the package index what the channels the solver reads contain (``ChannelIndexed``).

Runs in the background after a solve has read a channel, at most once per ``min_interval_s``
per channel subdir, and does anything only when a subdir's repodata fingerprint changed. The
solver's private tables (``channel_packages``: what it last announced; ``channel_index_state``:
the fingerprint) give the change, appended as events in the same transaction, so a crash
announces a change once or not at all. The projector owns the searchable index it feeds.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import rattler

from shared.events import ChannelIndexed, ChannelRecord, new_event, stream_of_channel
from shared.eventstore import EventStore
from shared.logging import get_logger

from .conda_solve import CondaSolver, fingerprint_records

log = get_logger(__name__)

COLUMNS = (
    "channel", "subdir", "name", "version", "build", "build_number", "license", "summary",
    "url", "md5", "sha256", "size", "timestamp", "depends",
)  # fmt: skip


def _row(channel: str, subdir: str, r: rattler.RepoDataRecord) -> tuple[object, ...]:
    stamp = r.timestamp
    if stamp is not None and stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return (
        channel,
        subdir,
        r.name.normalized,
        str(r.version),
        str(r.build),
        int(r.build_number),
        r.license,
        None,  # repodata carries no summary
        r.url,
        r.md5.hex() if r.md5 else None,
        r.sha256.hex() if r.sha256 else None,
        r.size,
        stamp if isinstance(stamp, datetime) else None,
        list(r.depends),
    )


RECORDS_PER_EVENT = 4000
"""About 100 bytes of JSON each: an event stays far under the store's size limit."""

INDEX_VERSION = "2"
"""Part of the stored fingerprint: a subdir indexed before changes were announced as events
is announced again once (its private rows are then compared with nothing)."""


def index_change(
    before: dict[tuple[str, str, str], str | None],
    after: dict[tuple[str, str, str], str | None],
) -> tuple[list[ChannelRecord], list[ChannelRecord]]:
    """(added, removed) records between two states of a subdir; a new license is an add."""
    added = [
        ChannelRecord(name=k[0], version=k[1], build=k[2], license=lic)
        for k, lic in sorted(after.items())
        if k not in before or before[k] != lic
    ]
    removed = [
        ChannelRecord(name=k[0], version=k[1], build=k[2], license=lic)
        for k, lic in sorted(before.items())
        if k not in after
    ]
    return added, removed


def change_events(
    channel: str,
    subdir: str,
    fingerprint: str,
    added: list[ChannelRecord],
    removed: list[ChannelRecord],
) -> list[ChannelIndexed]:
    """The change split into parts of at most ``RECORDS_PER_EVENT`` records."""
    tagged = [(True, r) for r in added] + [(False, r) for r in removed]
    chunks = [tagged[i : i + RECORDS_PER_EVENT] for i in range(0, len(tagged), RECORDS_PER_EVENT)]
    chunks = chunks or [[]]
    return [
        ChannelIndexed(
            channel=channel,
            subdir=subdir,
            fingerprint=fingerprint,
            added=[r for is_add, r in chunk if is_add],
            removed=[r for is_add, r in chunk if not is_add],
            part=i + 1,
            parts=len(chunks),
        )
        for i, chunk in enumerate(chunks)
    ]


class ChannelIndexer:
    def __init__(self, store: EventStore, solver: CondaSolver, min_interval_s: float) -> None:
        self.store = store
        self.solver = solver
        self.min_interval_s = min_interval_s
        self._last: dict[tuple[str, str], float] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    def schedule(self, channels: Iterable[str], platforms: Iterable[str]) -> None:
        """Index these channel subdirs in the background unless done recently."""
        now = time.monotonic()
        wanted = sorted({(c.rstrip("/"), s) for c in channels for s in (*platforms, "noarch")})
        due = [k for k in wanted if now - self._last.get(k, -1e9) >= self.min_interval_s]
        if not due:
            return
        for key in due:
            self._last[key] = now
        task = asyncio.create_task(self._index_all(due))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_idle(self) -> None:
        """Wait for scheduled indexing (tests and shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _index_all(self, keys: list[tuple[str, str]]) -> None:
        async with self._lock:
            for channel, subdir in keys:
                try:
                    await self.index(channel, subdir)
                except Exception as exc:  # the index is a convenience; solves go on without it
                    log.warning("channel indexing failed", channel=channel, error=repr(exc))
                    self._last.pop((channel, subdir), None)

    async def index(self, channel: str, subdir: str) -> int:
        """(Re)index one channel subdir; returns the number of records announced (0 if same)."""
        records = await self.solver.channel_records(channel, subdir)
        fingerprint = f"{INDEX_VERSION}:{fingerprint_records(records)}"
        rows = {(r.name.normalized, str(r.version), str(r.build)): r for r in records}
        async with self.store.transaction() as conn:
            # replicas index the same subdir one at a time
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{channel}|{subdir}")
            current = await conn.fetchval(
                "SELECT fingerprint FROM channel_index_state WHERE channel = $1 AND subdir = $2",
                channel,
                subdir,
            )
            if current == fingerprint:
                return 0
            before = {
                (r["name"], r["version"], r["build"]): r["license"]
                for r in await conn.fetch(
                    "SELECT name, version, build, license FROM channel_packages "
                    "WHERE channel = $1 AND subdir = $2",
                    channel,
                    subdir,
                )
            }
            added, removed = index_change(before, {k: r.license for k, r in rows.items()})
            events = change_events(channel, subdir, fingerprint, added, removed)
            await self.store.append(
                stream_of_channel(channel, subdir), [new_event(e) for e in events], conn=conn
            )
            await conn.execute(
                "DELETE FROM channel_packages WHERE channel = $1 AND subdir = $2", channel, subdir
            )
            await conn.copy_records_to_table(
                "channel_packages",
                records=[_row(channel, subdir, r) for r in rows.values()],
                columns=list(COLUMNS),
            )
            await conn.execute(
                "INSERT INTO channel_index_state (channel, subdir, fingerprint, records) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (channel, subdir) DO UPDATE SET "
                "fingerprint = EXCLUDED.fingerprint, records = EXCLUDED.records, "
                "indexed_at = now()",
                channel,
                subdir,
                fingerprint,
                len(rows),
            )
        log.info(
            "channel indexed",
            channel=channel,
            subdir=subdir,
            records=len(rows),
            added=len(added),
            removed=len(removed),
        )
        return len(added) + len(removed)
