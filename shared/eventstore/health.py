"""What operators watch about the log itself (``/metrics``): messages parked instead of
delivered, and events the relay has not yet published. The event store owns ``events`` and
``positions``; other services ask here instead of querying them."""

from __future__ import annotations

from .store import EventStore


async def parked_by_consumer(store: EventStore) -> dict[str, int]:
    """How many ``MessageParked`` events each consumer has written (see the ``parked-*``
    streams)."""
    rows = await store.pool.fetch(
        "SELECT data->>'consumer' AS consumer, count(*) AS n FROM events"
        " WHERE type = 'MessageParked' GROUP BY 1 ORDER BY 1"
    )
    return {r["consumer"]: int(r["n"]) for r in rows}


async def backlog(store: EventStore, position_name: str) -> int:
    """Events recorded after a consumer's saved position (the relay's: not yet published to
    NATS, growing while NATS is away)."""
    return int(
        await store.pool.fetchval(
            "SELECT coalesce(max(global_position), 0)"
            " - coalesce((SELECT position FROM positions WHERE name = $1), 0) FROM events",
            position_name,
        )
    )
