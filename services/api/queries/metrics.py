"""Counts for ``GET /metrics`` from the read model: builds, environments, storage (the event
bus's health comes from the event store: ``shared/eventstore/health.py``)."""

from __future__ import annotations

import asyncpg


async def builds_by_status(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT status, count(*) AS n FROM builds GROUP BY status")
    return {r["status"]: r["n"] for r in rows}


async def environment_count(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM environments")


async def queue_depth(pool: asyncpg.Pool) -> int:
    """Builds submitted and not finished: what the solvers and packers still have to do."""
    return await pool.fetchval("SELECT count(*) FROM builds WHERE status IN ('QUEUED', 'BUILDING')")


async def build_storage_bytes(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT coalesce(sum(size), 0) FROM builds")
