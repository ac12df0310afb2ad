"""What handlers and commands need of an event log, as an interface: the Postgres
``EventStore`` is one implementation, ``InMemoryEventStore`` another (for unit tests of the
fold and of decisions that read and append streams, with no database)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from shared.events import NewEvent, RecordedEvent

from .store import Append


class EventLog(Protocol):
    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: int | None = None,
        *,
        conn: Any = None,
    ) -> list[RecordedEvent]: ...

    async def append_many(
        self,
        appends: Sequence[Append],
        *,
        tracking: tuple[str, str] | None = None,
        fence: Any = None,
    ) -> list[RecordedEvent] | None: ...

    async def read_stream(self, stream: str, from_version: int = 1) -> list[RecordedEvent]: ...

    async def stream_version(self, stream: str) -> int: ...

    async def read_all(
        self, after_position: int = 0, limit: int = 1000, types: Sequence[str] | None = None
    ) -> list[RecordedEvent]: ...

    async def last_position(self) -> int: ...

    async def next_build_id(self) -> int: ...

    async def is_tracked(self, consumer: str, message_key: str) -> bool: ...
