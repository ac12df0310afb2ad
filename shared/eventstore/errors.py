"""Errors the event store raises for callers to handle (retry, or 409 at the API)."""

from __future__ import annotations


class ConcurrencyError(Exception):
    """The stream moved on since the caller read it: ``expected`` no longer equals ``actual``."""

    def __init__(self, stream: str, expected: int | None, actual: int) -> None:
        super().__init__(f"stream {stream!r} is at version {actual}, expected {expected}")
        self.stream = stream
        self.expected = expected
        self.actual = actual


class AlreadyProcessed(Exception):
    """A consumer's tracking record exists: the message was handled before."""
