"""The searchable package index behind /channel/ and /package/.

Two sources feed ``conda_channels``/``conda_packages``: packages of builds (the projector) and
every record of the channels the solver has read (``channel_packages``). This merge is the one
way channel records enter the index, used after indexing a channel and after a projection
rebuild (which drops and refills the index from the builds).
"""

from __future__ import annotations

import asyncpg


async def merge_channel_packages(conn: asyncpg.Connection, channel: str | None = None) -> None:
    """Add distinct (channel, name, version) rows from ``channel_packages``; no-op without it."""
    exists = await conn.fetchval(
        "SELECT to_regclass('channel_packages') IS NOT NULL "
        "AND to_regclass('conda_packages') IS NOT NULL"
    )
    if not exists:
        return
    await conn.execute(
        "INSERT INTO conda_channels (name, last_update) "
        "SELECT DISTINCT channel, now() FROM channel_packages "
        "WHERE $1::text IS NULL OR channel = $1 ORDER BY 1 "
        "ON CONFLICT (name) DO UPDATE SET last_update = excluded.last_update",
        channel,
    )
    await conn.execute(
        "INSERT INTO conda_packages (channel_id, name, version, license, summary) "
        "SELECT DISTINCT ON (c.id, p.name, p.version) c.id, p.name, p.version, p.license, "
        "p.summary FROM channel_packages p JOIN conda_channels c ON c.name = p.channel "
        "WHERE $1::text IS NULL OR p.channel = $1 "
        "ORDER BY c.id, p.name, p.version ON CONFLICT DO NOTHING",
        channel,
    )
