"""Counts for ``GET /metrics``: builds, environments, storage, and the event bus's health."""

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


async def parked_by_consumer(pool: asyncpg.Pool) -> dict[str, int]:
    """Messages parked instead of delivered (the ``parked-*`` streams), by consumer name."""
    rows = await pool.fetch(
        "SELECT data->>'consumer' AS consumer, count(*) AS n FROM events"
        " WHERE type = 'MessageParked' GROUP BY 1 ORDER BY 1"
    )
    return {r["consumer"]: r["n"] for r in rows}


async def relay_pending(pool: asyncpg.Pool) -> int:
    """Events the relay has not yet published (growing while NATS is away)."""
    return await pool.fetchval(
        "SELECT coalesce(max(global_position), 0)"
        " - coalesce((SELECT position FROM positions WHERE name = 'relay'), 0) FROM events"
    )
