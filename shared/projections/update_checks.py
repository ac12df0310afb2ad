"""Folding update checks into ``update_checks``: one row per environment, the latest request
and answer. Like the channel index it is applied as SQL in the projector's transaction (a row
per environment, no relation to the in-memory model); applying an event twice gives the same
row."""

from __future__ import annotations

import asyncpg

from shared.events import RecordedEvent, UpdateChecked, UpdateCheckRequested

REQUESTED = UpdateCheckRequested.event_type()
CHECKED = UpdateChecked.event_type()


async def apply_update_check(conn: asyncpg.Connection, event: RecordedEvent) -> None:
    data = event.payload()
    if isinstance(data, UpdateCheckRequested):
        await conn.execute(
            "INSERT INTO update_checks (namespace, environment, build_id, requested_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT (namespace, environment) DO UPDATE SET "
            "requested_at = excluded.requested_at",
            data.namespace,
            data.environment,
            data.build_id,
            event.recorded_at,
        )
        return
    assert isinstance(data, UpdateChecked)
    updates = [u.model_dump() for u in data.updates]  # the pool's jsonb codec encodes it
    await conn.execute(
        "INSERT INTO update_checks AS u (namespace, environment, build_id, checked_at, updates, "
        "changed, error) VALUES ($1, $2, $3, $4, $5, $6, $7) "
        "ON CONFLICT (namespace, environment) DO UPDATE SET build_id = excluded.build_id, "
        "checked_at = excluded.checked_at, updates = excluded.updates, "
        "changed = excluded.changed, error = excluded.error",
        data.namespace,
        data.environment,
        data.build_id,
        event.recorded_at,
        updates,
        data.changed,
        data.error,
    )
