"""The dispatcher's private tables (``webhook_deliveries``, ``webhook_attempts``; migration
040): each webhook's position in the log and how its attempts went.

Only this package reads or writes them (``tests/unit/test_boundaries.py``); the routes ask
through :func:`states` and :func:`recent_attempts`. Writes made while leading take the
lease's fenced connection, so a dispatcher that lost its leadership cannot move a position.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from shared.webhooks import DeliveryStatus

KEEP_ATTEMPTS = 100
"""Attempts kept per webhook, newest first, for the status page."""

_STATE_COLUMNS = (
    "webhook_id, position, replay_version, status, failures, attempts, delivered, last_error, "
    "last_status_code, last_attempt_at, next_attempt_at, last_delivered_position, "
    "last_delivered_event_id, last_delivered_type, last_delivered_at"
)


@dataclass(frozen=True)
class Attempt:
    """One POST to a receiver and what came of it (``error`` None: delivered)."""

    webhook_id: str
    position: int
    event_id: uuid.UUID
    event_type: str
    duration_ms: int
    status_code: int | None
    error: str | None


async def start(conn: asyncpg.Connection, webhook_id: str, position: int) -> None:
    """A new webhook's row, starting after ``position``; one that exists is left alone."""
    await conn.execute(
        "INSERT INTO webhook_deliveries (webhook_id, position) VALUES ($1, $2) "
        "ON CONFLICT (webhook_id) DO NOTHING",
        webhook_id,
        position,
    )


async def load(conn: asyncpg.Connection | asyncpg.Pool) -> dict[str, asyncpg.Record]:
    rows = await conn.fetch(f"SELECT {_STATE_COLUMNS} FROM webhook_deliveries")
    return {r["webhook_id"]: r for r in rows}


async def forget(conn: asyncpg.Connection, keep: set[str]) -> None:
    """Drop the rows (and attempts) of webhooks not in ``keep`` (deleted ones)."""
    await conn.execute(
        "DELETE FROM webhook_deliveries WHERE NOT (webhook_id = ANY($1))", sorted(keep)
    )
    await conn.execute(
        "DELETE FROM webhook_attempts WHERE NOT (webhook_id = ANY($1))", sorted(keep)
    )


async def rewind(
    conn: asyncpg.Connection, webhook_id: str, after: int, replay_version: int
) -> None:
    """Apply a replay request: deliver again from ``after``, failures forgotten."""
    await conn.execute(
        "UPDATE webhook_deliveries SET position = $2, replay_version = $3, failures = 0, "
        "status = 'pending', next_attempt_at = NULL WHERE webhook_id = $1",
        webhook_id,
        after,
        replay_version,
    )


async def advance(conn: asyncpg.Connection, webhook_id: str, position: int) -> None:
    """Events up to ``position`` need nothing (not wanted by this webhook)."""
    await conn.execute(
        "UPDATE webhook_deliveries SET position = greatest(position, $2) WHERE webhook_id = $1",
        webhook_id,
        position,
    )


async def record(
    conn: asyncpg.Connection,
    attempt: Attempt,
    status: DeliveryStatus,
    failures: int,
    next_attempt_at: datetime | None,
) -> None:
    """One attempt: the webhook's state after it (its position moves past the event when it
    was delivered) and a row in its recent attempts."""
    delivered = attempt.error is None
    await conn.execute(
        """UPDATE webhook_deliveries SET
               attempts = attempts + 1, status = $2, failures = $3, last_error = $4,
               last_status_code = $5, last_attempt_at = now(), next_attempt_at = $6,
               position = CASE WHEN $7 THEN $8 ELSE position END,
               delivered = delivered + CASE WHEN $7 THEN 1 ELSE 0 END,
               last_delivered_position = CASE WHEN $7 THEN $8 ELSE last_delivered_position END,
               last_delivered_event_id = CASE WHEN $7 THEN $9 ELSE last_delivered_event_id END,
               last_delivered_type = CASE WHEN $7 THEN $10 ELSE last_delivered_type END,
               last_delivered_at = CASE WHEN $7 THEN now() ELSE last_delivered_at END
           WHERE webhook_id = $1""",
        attempt.webhook_id,
        status,
        failures,
        attempt.error,
        attempt.status_code,
        next_attempt_at,
        delivered,
        attempt.position,
        attempt.event_id,
        attempt.event_type,
    )
    newest = await conn.fetchval(
        "INSERT INTO webhook_attempts (webhook_id, position, event_id, event_type, duration_ms, "
        "status_code, error) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        attempt.webhook_id,
        attempt.position,
        attempt.event_id,
        attempt.event_type,
        attempt.duration_ms,
        attempt.status_code,
        attempt.error,
    )
    if newest % 20 == 0:  # now and then is enough to keep it bounded
        await conn.execute(
            "DELETE FROM webhook_attempts WHERE webhook_id = $1 AND id <= (SELECT id FROM "
            "webhook_attempts WHERE webhook_id = $1 ORDER BY id DESC OFFSET $2 LIMIT 1)",
            attempt.webhook_id,
            KEEP_ATTEMPTS,
        )


def _state(row: asyncpg.Record | None) -> dict[str, Any]:
    if row is None:
        return {"status": "pending", "position": None, "failures": 0, "attempts": 0}
    out = dict(row)
    out.pop("webhook_id")
    out.pop("replay_version")
    for key in ("last_attempt_at", "next_attempt_at", "last_delivered_at"):
        out[key] = out[key].isoformat() if out[key] else None
    if out["last_delivered_event_id"] is not None:
        out["last_delivered_event_id"] = str(out["last_delivered_event_id"])
    return out


async def states(pool: asyncpg.Pool, webhook_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Each webhook's delivery state as the API shows it (``pending`` before the dispatcher
    has seen the webhook)."""
    rows = await pool.fetch(
        f"SELECT {_STATE_COLUMNS} FROM webhook_deliveries WHERE webhook_id = ANY($1)",
        webhook_ids,
    )
    found = {r["webhook_id"]: r for r in rows}
    return {i: _state(found.get(i)) for i in webhook_ids}


async def recent_attempts(pool: asyncpg.Pool, webhook_id: str, limit: int) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT position, event_id, event_type, attempted_at, duration_ms, status_code, error "
        "FROM webhook_attempts WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2",
        webhook_id,
        limit,
    )
    return [
        {
            **dict(r),
            "event_id": str(r["event_id"]),
            "attempted_at": r["attempted_at"].isoformat(),
            "delivered": r["error"] is None,
        }
        for r in rows
    ]
