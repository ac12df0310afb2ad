"""Workers: durable JetStream pull consumers whose handlers run exactly once per event.

Delivery is at-least-once; a handler's result events and a tracking record commit together,
so a redelivered message (after a crash, a timeout or a duplicate publish) is recognised and
acknowledged without running twice. Attempts are bounded by us, not only by JetStream: a
message delivered more times than ``max_attempts`` (say, because every attempt killed the
process) is not run again but turned into the worker's failure events, so nothing stays stuck.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import structlog
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from shared.aio import raise_if_cancelled
from shared.events import MessageParked, RecordedEvent, new_event
from shared.eventstore import Append, EventStore
from shared.logging import get_logger
from shared.settings import Settings

from .jetstream import ensure_stream

log = get_logger(__name__)


@dataclass
class HandlerContext:
    event: RecordedEvent
    delivery: int
    max_attempts: int
    store: EventStore
    log: Any

    @property
    def last_attempt(self) -> bool:
        return self.delivery >= self.max_attempts


class Worker(ABC):
    """Subclass, name the durable consumer and its event types, implement ``handle``."""

    name: ClassVar[str]
    event_types: ClassVar[tuple[str, ...]]

    @abstractmethod
    async def handle(self, event: RecordedEvent, ctx: HandlerContext) -> Sequence[Append]:
        """Do the work and return the events to append (committed with the tracking record)."""

    def exhausted(self, event: RecordedEvent, error: str) -> Sequence[Append]:
        """Events that record giving up on ``event`` (e.g. BuildFailed). Default: none."""
        return []

    def log_context(self, event: RecordedEvent) -> dict[str, Any]:
        ctx: dict[str, Any] = {"event_type": event.type, "event_id": str(event.event_id)}
        if "build_id" in event.data:
            ctx["build_id"] = event.data["build_id"]
        return ctx


class ConsumerRunner:
    def __init__(
        self,
        worker: Worker,
        store: EventStore,
        nc: Client,
        settings: Settings,
        concurrency: int = 1,
    ) -> None:
        self.worker = worker
        self.store = store
        self.nc = nc
        self.js = nc.jetstream(timeout=5)
        self.settings = settings
        self.concurrency = concurrency
        self.max_attempts = settings.consumer_max_deliver
        self._tasks: set[asyncio.Task[None]] = set()

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.worker.name,
            filter_subjects=[self.settings.subject(t) for t in self.worker.event_types],
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.settings.consumer_ack_wait_s,
            # one delivery beyond our bound, so the last one can record the failure
            max_deliver=self.max_attempts + 1,
            max_ack_pending=max(self.concurrency * 4, 16),
        )

    async def setup(self) -> Any:
        await ensure_stream(self.js, self.settings)
        config = self.consumer_config()
        try:
            await self.js.consumer_info(self.settings.nats_stream, self.worker.name)
        except NotFoundError:
            await self.js.add_consumer(self.settings.nats_stream, config)
        return await self.js.pull_subscribe_bind(
            durable=self.worker.name, stream=self.settings.nats_stream
        )

    async def run(self, stop: asyncio.Event | None = None) -> None:
        stop = stop or asyncio.Event()
        psub = await self._retrying(self.setup)
        slots = asyncio.Semaphore(self.concurrency)
        log.info("consumer started", consumer=self.worker.name, concurrency=self.concurrency)
        try:
            while not stop.is_set():
                raise_if_cancelled()
                await slots.acquire()
                try:
                    msgs = await psub.fetch(1, timeout=1)
                except TimeoutError:
                    slots.release()
                    continue
                except Exception as exc:  # NATS away: keep trying, nothing is lost
                    slots.release()
                    log.warning("fetch failed", consumer=self.worker.name, error=repr(exc))
                    await asyncio.sleep(0.5)
                    continue
                for msg in msgs:
                    task = asyncio.create_task(self.process(msg))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
                    task.add_done_callback(lambda _t: slots.release())
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _retrying(self, fn):  # type: ignore[no-untyped-def]
        while True:
            try:
                return await fn()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer setup failed; retrying", error=repr(exc))
                await asyncio.sleep(0.5)

    async def process(self, msg: Msg) -> None:
        md = msg.metadata
        delivery = md.num_delivered or 1
        try:
            event = RecordedEvent.from_json(msg.data)
            event.payload()  # type known and data valid, or park
        except Exception as exc:
            await self._park(msg, md.sequence.stream, exc)
            return
        with structlog.contextvars.bound_contextvars(
            consumer=self.worker.name, delivery=delivery, **self.worker.log_context(event)
        ):
            await self._process_event(msg, event, delivery)

    async def _process_event(self, msg: Msg, event: RecordedEvent, delivery: int) -> None:
        key = str(event.event_id)
        try:
            if await self.store.is_tracked(self.worker.name, key):
                log.info("already processed; acknowledging")
                await msg.ack()
                return
            if delivery > self.max_attempts:
                error = f"gave up after {self.max_attempts} attempts (worker died or timed out)"
                await self._commit(event, self.worker.exhausted(event, error), key)
                await msg.ack()
                return
        except Exception as exc:
            log.warning("store unavailable; will retry", error=repr(exc))
            await msg.nak(delay=1)
            return

        heartbeat = asyncio.create_task(self._heartbeat(msg))
        ctx = HandlerContext(event, delivery, self.max_attempts, self.store, log)
        try:
            appends = await self.worker.handle(event, ctx)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("handler failed", error=repr(exc))
            await self._after_failure(msg, event, key, delivery, exc)
            return
        finally:
            heartbeat.cancel()
        try:
            await self._commit(event, appends, key)
        except Exception as exc:
            log.exception("could not record result; will retry", error=repr(exc))
            await msg.nak(delay=1)
            return
        await msg.ack()

    async def _after_failure(
        self, msg: Msg, event: RecordedEvent, key: str, delivery: int, exc: Exception
    ) -> None:
        if delivery < self.max_attempts:
            await msg.nak(delay=min(0.2 * 2**delivery, 10.0))
            return
        error = f"{type(exc).__name__}: {exc}"
        try:
            await self._commit(event, self.worker.exhausted(event, error), key)
        except Exception:
            log.exception("could not record failure; will retry")
            await msg.nak(delay=1)
            return
        await msg.ack()

    async def _commit(self, event: RecordedEvent, appends: Sequence[Append], key: str) -> None:
        result = await self.store.append_many(appends, tracking=(self.worker.name, key))
        if result is None:
            log.info("duplicate delivery: result was already recorded")
        else:
            log.info("handled", appended=[e.type for e in result])

    async def _heartbeat(self, msg: Msg) -> None:
        interval = max(self.settings.consumer_ack_wait_s / 3, 0.1)
        while True:
            await asyncio.sleep(interval)
            try:
                await msg.in_progress()
            except Exception as exc:
                log.warning("in-progress ack failed", error=repr(exc))

    async def _park(self, msg: Msg, seq: int, exc: Exception) -> None:
        """Keep an unusable message as a MessageParked event, then stop its redelivery."""
        payload = msg.data.decode("utf-8", errors="replace")[:10000]
        log.error(
            "parking unusable message",
            consumer=self.worker.name,
            subject=msg.subject,
            stream_sequence=seq,
            error=repr(exc),
        )
        parked = new_event(
            MessageParked(
                consumer=self.worker.name,
                subject=msg.subject,
                stream_sequence=seq,
                error=f"{type(exc).__name__}: {exc}"[:2000],
                payload=payload,
            )
        )
        try:
            await self.store.append_many(
                [Append(f"parked-{self.worker.name}", [parked])],
                tracking=(self.worker.name, f"seq-{seq}"),
            )
        except Exception:
            log.exception("could not park message; will retry")
            await msg.nak(delay=1)
            return
        await msg.term()
