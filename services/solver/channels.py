"""Index channel repodata into ``channel_packages`` so the API can list and search packages.

Runs in the background after a solve has read a channel, at most once per ``min_interval_s``
per channel subdir, and rewrites a subdir's rows only when its repodata fingerprint changed.
Rows are replaced with one ``COPY`` per subdir, which takes well under a second for tens of
thousands of records.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from datetime import UTC, datetime

import asyncpg
import rattler

from shared.logging import get_logger
from shared.package_index import merge_channel_packages

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


class ChannelIndexer:
    def __init__(self, pool: asyncpg.Pool, solver: CondaSolver, min_interval_s: float) -> None:
        self.pool = pool
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
        """(Re)index one channel subdir; returns the number of records written (0 if same)."""
        records = await self.solver.channel_records(channel, subdir)
        fingerprint = fingerprint_records(records)
        async with self.pool.acquire() as conn, conn.transaction():
            # replicas index the same subdir one at a time
            await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"{channel}|{subdir}")
            current = await conn.fetchval(
                "SELECT fingerprint FROM channel_index_state WHERE channel = $1 AND subdir = $2",
                channel,
                subdir,
            )
            if current == fingerprint:
                return 0
            rows = {(r.name.normalized, str(r.version), str(r.build)): r for r in records}
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
            await merge_channel_packages(conn, channel)
        log.info("channel indexed", channel=channel, subdir=subdir, records=len(rows))
        return len(rows)
