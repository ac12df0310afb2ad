"""Update checks in the read model (``update_checks``, the projector's): one environment's
latest, and what the schedule has to ask for."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from ..envelopes import iso


@dataclass(frozen=True, slots=True)
class CheckState:
    namespace: str
    environment: str
    build_id: int
    """The environment's current build."""
    checked_build_id: int | None
    requested_at: datetime | None
    checked_at: datetime | None


async def check_states(pool: asyncpg.Pool) -> list[CheckState]:
    """Every live environment whose current build is completed, with its latest check."""
    rows = await pool.fetch(
        "SELECT e.namespace, e.name, e.current_build_id, u.build_id AS checked_build_id, "
        "u.requested_at, u.checked_at FROM environments e "
        "JOIN builds b ON b.id = e.current_build_id AND b.status = 'COMPLETED' "
        "AND b.deleted_on IS NULL "
        "LEFT JOIN update_checks u ON u.namespace = e.namespace AND u.environment = e.name "
        "WHERE e.deleted_on IS NULL ORDER BY e.namespace, e.name"
    )
    return [
        CheckState(
            r["namespace"],
            r["name"],
            r["current_build_id"],
            r["checked_build_id"],
            r["requested_at"],
            r["checked_at"],
        )
        for r in rows
    ]


async def latest(
    pool: asyncpg.Pool, namespace: str, name: str, build_id: int | None
) -> dict[str, Any]:
    """The latest check of the environment's current build, as the API answers it."""
    row = await pool.fetchrow(
        "SELECT * FROM update_checks WHERE namespace = $1 AND environment = $2", namespace, name
    )
    if row is None or build_id is None or row["build_id"] != build_id:
        return {"build_id": build_id, "checked_on": None, "requested_on": None, "pending": False,
                "count": 0, "updates": [], "changed": 0, "error": None}  # fmt: skip
    updates = row["updates"]
    pending = row["requested_at"] is not None and (
        row["checked_at"] is None or row["requested_at"] > row["checked_at"]
    )
    return {
        "build_id": build_id,
        "checked_on": iso(row["checked_at"]),
        "requested_on": iso(row["requested_at"]),
        "pending": pending,
        "count": len(updates),
        "updates": updates,
        "changed": row["changed"],
        "error": row["error"],
    }
