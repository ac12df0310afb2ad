"""Relay: publishes the events table to JetStream in position order.

The position is saved only after JetStream acknowledged every event up to it, so a crash or a
NATS outage republishes at most a tail of events, which JetStream drops as duplicates by
``Nats-Msg-Id`` (the event id). Transient errors (NATS down, timeouts) are retried forever.

An event NATS can never take (over the server's max payload, or refused by the stream as too
big) would stop every later event behind it. The relay parks it instead: a ``MessageParked``
event on the ``parked-relay`` stream and an error log line for operators, and the failure its
build would otherwise wait for forever (``unpublishable.failure_for``), then goes on. Postgres
going away is the caller's to handle (``leader.run_as_leader`` reconnects and resumes).
"""

from __future__ import annotations

import asyncio

from nats.aio.client import Client
from nats.js import JetStreamContext
from nats.js.errors import APIError

from shared.events import MessageParked, RecordedEvent, new_event
from shared.eventstore import Append, EventStore
from shared.eventstore.leader import Lease, run_as_leader
from shared.eventstore.tail import LogTailer
from shared.logging import get_logger
from shared.settings import Settings

from .jetstream import ensure_stream
from .unpublishable import failure_for, too_large_reason

POSITION_NAME = "relay"
PARKED_STREAM = "parked-relay"
HEADERS_ALLOWANCE = 1024
"""Bytes kept for the message headers when comparing an event with NATS's max payload."""
STREAM_REFUSED_AS_TOO_BIG = 10054
"""JetStream's error code for a message over the stream's ``max_msg_size``."""
PARKED_PAYLOAD_CHARS = 10000

log = get_logger(__name__)


class Relay:
    def __init__(self, store: EventStore, nc: Client, settings: Settings) -> None:
        self.store = store
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=5)
        self.settings = settings
        self.published = 0
        self.parked = 0

    async def publish_batch(self, batch: list[RecordedEvent]) -> None:
        """Publish in order and wait for every ack; park what NATS can never take; raise if
        anything else failed (the caller retries the batch, duplicates are dropped)."""
        limit = self.nc.max_payload - HEADERS_ALLOWANCE
        run: list[tuple[RecordedEvent, bytes]] = []
        for event in batch:
            payload = event.to_json()
            if len(payload) > limit:
                await self._publish_run(run)  # what came before it goes first
                run = []
                await self.park(event, too_large_reason(event, len(payload), limit))
            else:
                run.append((event, payload))
        await self._publish_run(run)

    async def _publish_run(self, run: list[tuple[RecordedEvent, bytes]]) -> None:
        results = await asyncio.gather(
            *(
                self.js.publish(
                    self.settings.subject(e.type), payload, headers={"Nats-Msg-Id": str(e.event_id)}
                )
                for e, payload in run
            ),
            return_exceptions=True,
        )
        for (event, _), result in zip(run, results, strict=True):
            if isinstance(result, APIError) and result.err_code == STREAM_REFUSED_AS_TOO_BIG:
                await self.park(event, f"JetStream refused event {event.type}: {result}")
            elif isinstance(result, BaseException):
                raise result
            elif not result.duplicate:
                self.published += 1

    async def park(self, event: RecordedEvent, reason: str) -> None:
        """Record once (tracked by event id) that ``event`` was not published, and why."""
        log.error(
            "event cannot be published; parked",
            event_id=str(event.event_id),
            event_type=event.type,
            stream=event.stream,
            global_position=event.global_position,
            reason=reason,
        )
        parked = MessageParked(
            consumer=POSITION_NAME,
            subject=self.settings.subject(event.type),
            stream_sequence=event.global_position,
            error=reason,
            payload=event.to_json()[:PARKED_PAYLOAD_CHARS].decode(errors="replace"),
        )
        appends = [Append(PARKED_STREAM, [new_event(parked, causation=event)])]
        history = [e.type for e in await self.store.read_stream(event.stream)]
        failure = failure_for(event, history, reason)
        if failure is not None:
            appends.append(Append(event.stream, [new_event(failure, causation=event)]))
        if await self.store.append_many(appends, tracking=(POSITION_NAME, str(event.event_id))):
            self.parked += 1

    async def run(self) -> None:
        """Relay forever; reconnects and resumes from the saved position if Postgres goes."""
        await run_as_leader(self.store, POSITION_NAME, self._relay, self.settings.leader_lease_s)

    async def _relay(self, lease: Lease) -> None:
        await self._with_retries(ensure_stream, self.js, self.settings)
        position = await self.store.load_position(POSITION_NAME)
        log.info("relay started", position=position, term=lease.term)
        async with LogTailer(self.store, position) as tailer:
            async for batch in tailer.batches():
                await self._with_retries(self.publish_batch, batch)
                tailer.position = batch[-1].global_position
                async with lease.fenced(self.store) as conn:  # never after a standby took over
                    await self.store.save_position(POSITION_NAME, tailer.position, conn)

    async def _with_retries(self, fn, *args) -> None:  # type: ignore[no-untyped-def]
        delay = 0.1
        while True:
            try:
                await fn(*args)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS down, timeouts: wait, never skip an event
                log.warning("relay publish failed; retrying", error=repr(exc), delay=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
