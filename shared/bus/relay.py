"""Relay: publishes the events table to JetStream in position order.

The position is saved only after JetStream acknowledged every event up to it, so a crash or a
NATS outage republishes at most a tail of events, which JetStream drops as duplicates by
``Nats-Msg-Id`` (the event id).
"""

from __future__ import annotations

import asyncio

from nats.aio.client import Client
from nats.js import JetStreamContext

from shared.events import RecordedEvent
from shared.eventstore import EventStore
from shared.eventstore.leader import leadership
from shared.eventstore.tail import LogTailer
from shared.logging import get_logger
from shared.settings import Settings

from .jetstream import ensure_stream

POSITION_NAME = "relay"
log = get_logger(__name__)


class Relay:
    def __init__(self, store: EventStore, nc: Client, settings: Settings) -> None:
        self.store = store
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=5)
        self.settings = settings
        self.published = 0

    async def publish_batch(self, batch: list[RecordedEvent]) -> None:
        """Publish concurrently and wait for every ack; raise if any failed."""
        acks = await asyncio.gather(
            *(
                self.js.publish(
                    self.settings.subject(e.type),
                    e.to_json(),
                    headers={"Nats-Msg-Id": str(e.event_id)},
                )
                for e in batch
            )
        )
        self.published += sum(0 if a.duplicate else 1 for a in acks)

    async def run(self) -> None:
        async with leadership(self.store, "relay"):
            await self._with_retries(ensure_stream, self.js, self.settings)
            position = await self.store.load_position(POSITION_NAME)
            log.info("relay started", position=position)
            async with LogTailer(self.store, position) as tailer:
                async for batch in tailer.batches():
                    await self._with_retries(self.publish_batch, batch)
                    tailer.position = batch[-1].global_position
                    await self.store.save_position(POSITION_NAME, tailer.position)

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
