"""Append-only event store on Postgres (asyncpg)."""

from .errors import STORE_UNAVAILABLE, AlreadyProcessed, ConcurrencyError, EventTooLarge
from .memory import InMemoryEventStore
from .migrate import apply_migrations
from .protocol import EventLog
from .store import MAX_EVENT_BYTES, NO_STREAM, Append, EventStore, create_pool, record_from_row

__all__ = [
    "NO_STREAM",
    "STORE_UNAVAILABLE",
    "AlreadyProcessed",
    "Append",
    "ConcurrencyError",
    "EventLog",
    "EventTooLarge",
    "InMemoryEventStore",
    "MAX_EVENT_BYTES",
    "EventStore",
    "apply_migrations",
    "create_pool",
    "record_from_row",
]
