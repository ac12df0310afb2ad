"""Append-only event store on Postgres (asyncpg)."""

from .errors import AlreadyProcessed, ConcurrencyError
from .migrate import apply_migrations
from .store import NO_STREAM, Append, EventStore, create_pool, record_from_row

__all__ = [
    "NO_STREAM",
    "AlreadyProcessed",
    "Append",
    "ConcurrencyError",
    "EventStore",
    "apply_migrations",
    "create_pool",
    "record_from_row",
]
