"""An event log in memory with the Postgres store's semantics (``EventLog``): global positions
in commit order, per-stream versions, optimistic concurrency, atomic multi-stream appends with
a tracking record, the size limit. ``tests/integration/test_event_log_contract.py`` runs the
same assertions against both, so unit tests on this one say something about the real one.

``conn`` and ``fence`` (Postgres transactions and leases) have no meaning here and are
ignored; a fence callable is still called (with None) so a lost lease raises as it would."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from shared.events import NewEvent, RecordedEvent, utcnow

from .errors import ConcurrencyError
from .store import NO_STREAM, Append, check_sizes


class InMemoryEventStore:
    def __init__(self) -> None:
        self.events: list[RecordedEvent] = []
        self.streams: dict[str, list[RecordedEvent]] = {}
        self.tracking: set[tuple[str, str]] = set()
        self._build_ids = 0

    # --- writing -------------------------------------------------------------------------

    def _check(self, stream: str, events: Sequence[NewEvent], expected: int | None) -> int:
        version = len(self.streams.get(stream, []))
        if expected is not None and expected != version:
            raise ConcurrencyError(stream, expected, version)
        check_sizes([e.row() for e in events])
        return version

    def _record(self, stream: str, events: Sequence[NewEvent]) -> list[RecordedEvent]:
        recorded = []
        now = utcnow()
        for event in events:
            raw = event.row()
            found = RecordedEvent(
                global_position=len(self.events) + 1,
                stream=stream,
                version=len(self.streams.get(stream, [])) + 1,
                event_id=event.event_id,
                type=event.type,
                schema_version=event.data.schema_version,
                data=raw["data"],
                metadata=event.metadata,
                occurred_at=event.occurred_at,
                recorded_at=now,
            )
            self.events.append(found)
            self.streams.setdefault(stream, []).append(found)
            recorded.append(found)
        return recorded

    async def append(
        self,
        stream: str,
        events: Sequence[NewEvent],
        expected_version: int | None = None,
        *,
        conn: Any = None,
    ) -> list[RecordedEvent]:
        if not events:
            return []
        self._check(stream, events, expected_version)
        return self._record(stream, events)

    async def append_many(
        self,
        appends: Sequence[Append],
        *,
        tracking: tuple[str, str] | None = None,
        fence: Any = None,
    ) -> list[RecordedEvent] | None:
        if fence is not None:
            await fence(None)
        if tracking is not None and tracking in self.tracking:
            return None
        # check everything first: all or nothing, as one transaction (versions move as the
        # earlier appends of the same write land)
        pending: dict[str, int] = {}
        for a in appends:
            if not a.events:
                continue
            version = pending.get(a.stream, len(self.streams.get(a.stream, [])))
            if a.expected_version is not None and a.expected_version != version:
                raise ConcurrencyError(a.stream, a.expected_version, version)
            self._check(a.stream, a.events, None)
            pending[a.stream] = version + len(a.events)
        if tracking is not None:
            self.tracking.add(tracking)
        recorded: list[RecordedEvent] = []
        for a in appends:
            if a.events:
                recorded += self._record(a.stream, a.events)
        return recorded

    async def next_build_id(self) -> int:
        self._build_ids += 1
        return self._build_ids

    async def is_tracked(self, consumer: str, message_key: str) -> bool:
        return (consumer, message_key) in self.tracking

    # --- reading -------------------------------------------------------------------------

    async def read_stream(self, stream: str, from_version: int = 1) -> list[RecordedEvent]:
        return [e for e in self.streams.get(stream, []) if e.version >= from_version]

    async def stream_version(self, stream: str) -> int:
        return len(self.streams.get(stream, []))

    async def read_all(
        self, after_position: int = 0, limit: int = 1000, types: Sequence[str] | None = None
    ) -> list[RecordedEvent]:
        found = [
            e
            for e in self.events
            if e.global_position > after_position and (not types or e.type in types)
        ]
        return found[:limit]

    async def last_position(self) -> int:
        return len(self.events)


__all__ = ["NO_STREAM", "InMemoryEventStore"]
