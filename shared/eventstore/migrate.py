"""Plain-SQL migrations, applied in file-name order at start-up and recorded in a table.

Every service runs this on start; an advisory lock makes concurrent start-ups take turns.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import asyncpg

MIGRATIONS_LOCK = 4242000000


def migration_files() -> list[tuple[str, str]]:
    root = resources.files("shared.eventstore") / "migrations"
    files = sorted((p.name, p.read_text()) for p in root.iterdir() if p.name.endswith(".sql"))
    return files


async def apply_migrations(conn: asyncpg.Connection, extra: list[Path] | None = None) -> list[str]:
    """Apply pending migrations; return the names applied now."""
    applied_now: list[str] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATIONS_LOCK)
        # owner: eventstore
        await conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for name, sql in migration_files():
            if name in done:
                continue
            await conn.execute(sql)
            await conn.execute("INSERT INTO schema_migrations (name) VALUES ($1)", name)
            applied_now.append(name)
    return applied_now
