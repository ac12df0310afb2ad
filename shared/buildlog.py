"""Live build logs: lines tagged with build id and phase, readable while the build runs.

Writers append to Postgres (and mirror each line to structlog with the build id bound);
readers page by ``seq`` and are woken by NOTIFY on ``cs_build_log``. When a build ends,
``render`` turns the lines into the LOGS artifact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg

from shared.artifacts.keys import build_prefix
from shared.logging import get_logger

log = get_logger("build")


def logs_key(build_id: int) -> str:
    """Where a build's LOGS artifact is stored; the solver and the packer both write it."""
    return build_prefix(build_id) + "logs.txt"


@dataclass(frozen=True)
class LogLine:
    seq: int
    phase: str
    line: str
    logged_at: datetime

    def render(self) -> str:
        stamp = self.logged_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"{stamp} [{self.phase}] {self.line}"


class BuildLog:
    def __init__(self, pool: asyncpg.Pool, build_id: int) -> None:
        self.pool = pool
        self.build_id = build_id

    async def write(self, phase: str, *lines: str) -> None:
        rows = [
            (self.build_id, phase, part) for line in lines for part in line.splitlines() or [""]
        ]
        if not rows:
            return
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                "INSERT INTO build_logs (build_id, phase, line) VALUES ($1, $2, $3)", rows
            )
            await conn.execute("SELECT pg_notify('cs_build_log', $1)", str(self.build_id))
        for _, _, text in rows:
            log.info(text, build_id=self.build_id, phase=phase)

    async def read(self, after_seq: int = 0, limit: int = 10000) -> list[LogLine]:
        rows = await self.pool.fetch(
            "SELECT seq, phase, line, logged_at FROM build_logs "
            "WHERE build_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            self.build_id,
            after_seq,
            limit,
        )
        return [LogLine(r["seq"], r["phase"], r["line"], r["logged_at"]) for r in rows]

    async def text(self) -> str:
        lines = await self.read(limit=10_000_000)
        return "".join(line.render() + "\n" for line in lines)
