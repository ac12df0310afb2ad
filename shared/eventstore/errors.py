"""Errors the event store raises for callers to handle (retry, or 409 at the API)."""

from __future__ import annotations

import asyncpg

STORE_UNAVAILABLE: tuple[type[Exception], ...] = (
    ConnectionError,  # refused or reset: the server is down or restarting
    asyncpg.InterfaceError,  # the connection was closed under us
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up, crashed
)
"""What asyncpg raises while Postgres is away; a retry after it is back succeeds."""


class ConcurrencyError(Exception):
    """The stream moved on since the caller read it: ``expected`` no longer equals ``actual``."""

    def __init__(self, stream: str, expected: int | None, actual: int) -> None:
        super().__init__(f"stream {stream!r} is at version {actual}, expected {expected}")
        self.stream = stream
        self.expected = expected
        self.actual = actual


class AlreadyProcessed(Exception):
    """A consumer's tracking record exists: the message was handled before."""


class EventTooLarge(ValueError):
    """An event over ``MAX_EVENT_BYTES``: it could never be published (413 at the API)."""

    def __init__(self, event_type: str, size: int, limit: int) -> None:
        super().__init__(
            f"a {event_type} event of {size} bytes is over the limit of {limit} bytes per event"
        )
        self.event_type = event_type
        self.size = size
        self.limit = limit
