"""Workers: durable JetStream pull consumers whose handlers run exactly once per event.

Delivery is at-least-once; a handler's result events and a tracking record commit together,
so a redelivered message (after a crash, a timeout or a duplicate publish) is recognised and
acknowledged without running twice. An attempt starts only under the message's lease
(``shared.eventstore.leases``): a redelivery that arrives while an attempt still runs (its
in-progress acks could not reach JetStream in time) waits instead of running beside it, and
the commit is fenced so that an attempt that lost its lease cannot record a result.

Attempts are counted by the lease when one really starts, not by JetStream's delivery count
(JetStream redelivers without limit; a delivery that found the lease held costs nothing). A
message whose attempts are used up (say, because every attempt killed the process) is not run
again but turned into the worker's failure events, so nothing stays stuck.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
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
from shared.eventstore import Append, ConcurrencyError, EventStore, EventTooLarge
from shared.eventstore.leases import Lease, LeaseHeld, LeaseLost, Leases
from shared.logging import get_logger
from shared.settings import Settings

from .jetstream import ensure_stream

log = get_logger(__name__)


@dataclass
class HandlerContext:
    event: RecordedEvent
    attempt: int
    """1 for the first attempt; unique per message, so it names the attempt's scratch space."""
    max_attempts: int
    store: EventStore
    log: Any

    @property
    def last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts


class Worker(ABC):
    """Subclass, name the durable consumer and its event types, implement ``handle``."""

    name: ClassVar[str]
    event_types: ClassVar[tuple[str, ...]]
    in_order: ClassVar[bool] = False
    """One event at a time across every replica, in log order (JetStream's max_ack_pending
    of 1): for a worker whose decisions depend on the previous event's."""

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
        self.ack_wait = settings.consumer_ack_wait_s
        self.leases = Leases(store, term_s=settings.lease_term_s)
        self.holder = f"{socket.gethostname()}:{os.getpid()}"
        self._tasks: set[asyncio.Task[None]] = set()

    def consumer_config(self) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self.worker.name,
            filter_subjects=[self.settings.subject(t) for t in self.worker.event_types],
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=self.ack_wait,
            max_deliver=-1,  # attempts are counted by the lease; redeliveries must not run out
            max_ack_pending=1 if self.worker.in_order else max(self.concurrency * 4, 16),
            num_replicas=self.settings.nats_replicas,
        )

    async def setup(self) -> Any:
        await ensure_stream(self.js, self.settings)
        config = self.consumer_config()
        try:
            info = await self.js.consumer_info(self.settings.nats_stream, self.worker.name)
        except NotFoundError:
            await self.js.add_consumer(self.settings.nats_stream, config)
        else:
            if info.config.max_deliver != config.max_deliver:  # made by an older version
                await self.js.add_consumer(self.settings.nats_stream, config)  # updates it
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
        delivery = md.num_delivered or 1  # JetStream's count, for the logs; attempts are ours
        try:
            event = RecordedEvent.from_json(msg.data)
            event.payload()  # type known and data valid, or park
        except Exception as exc:
            await self._park(msg, md.sequence.stream, exc)
            return
        with structlog.contextvars.bound_contextvars(
            consumer=self.worker.name, delivery=delivery, **self.worker.log_context(event)
        ):
            await self._process_event(msg, event)

    async def _process_event(self, msg: Msg, event: RecordedEvent) -> None:
        key = str(event.event_id)
        try:
            start = await self._start_attempt(key)
        except Exception as exc:
            log.warning("store unavailable; will retry", error=repr(exc))
            await _nak(msg, 1)
            return
        if start is None:
            log.info("already processed; acknowledging")
            await _ack(msg)
            return
        if isinstance(start, LeaseHeld):
            # A redelivery of a message whose attempt still runs: costs no attempt, waits.
            log.info(
                "another attempt is running; not starting a second one",
                holder=start.holder,
                running_attempt=start.attempt,
            )
            await _nak(msg, min(max(start.remaining_s + 0.5, 0.5), self.leases.term_s))
            return
        with structlog.contextvars.bound_contextvars(attempt=start.attempt):
            if start.attempt > self.max_attempts:
                error = f"gave up after {self.max_attempts} attempts (worker died or timed out)"
                await self._finish(msg, event, start, self.worker.exhausted(event, error))
                return
            await self._attempt(msg, event, start)

    async def _start_attempt(self, key: str) -> Lease | LeaseHeld | None:
        """The message's lease, or None if it was handled already."""
        if await self.store.is_tracked(self.worker.name, key):
            return None
        start = await self.leases.acquire(self.worker.name, key, self.holder)
        if isinstance(start, Lease) and await self.store.is_tracked(self.worker.name, key):
            await self.leases.release(start)  # the previous attempt committed just now
            return None
        return start

    async def _attempt(self, msg: Msg, event: RecordedEvent, lease: Lease) -> None:
        """Run the handler while keeping the lease and the ack deadline alive, then commit."""
        ctx = HandlerContext(event, lease.attempt, self.max_attempts, self.store, log)
        handler = asyncio.ensure_future(self.worker.handle(event, ctx))
        lost: list[str] = []

        def on_lost(reason: str) -> None:
            lost.append(reason)
            handler.cancel(f"lease lost: {reason}")

        keeper = asyncio.create_task(self.leases.keep(lease, on_lost))
        heartbeat = asyncio.create_task(self._heartbeat(msg))
        try:
            try:
                appends = await handler
            except asyncio.CancelledError:
                if not lost or _cancelling():
                    raise
                log.warning("lease lost; attempt abandoned", reason=lost[0])
                await _nak(msg, 0)
                return
            except Exception as exc:
                if lost:
                    log.warning("lease lost; attempt abandoned", reason=lost[0], error=repr(exc))
                    await _nak(msg, 0)
                    return
                log.exception("handler failed", error=repr(exc))
                await self._after_failure(msg, event, lease, exc)
                return
            await self._finish(msg, event, lease, appends, lost)
        finally:
            keeper.cancel()
            heartbeat.cancel()

    async def _after_failure(
        self, msg: Msg, event: RecordedEvent, lease: Lease, exc: Exception
    ) -> None:
        if lease.attempt < self.max_attempts:
            with contextlib.suppress(Exception):
                await self.leases.release(lease)  # the retry need not wait for the term
            await _nak(msg, min(0.2 * 2**lease.attempt, 10.0))
            return
        error = f"{type(exc).__name__}: {exc}"
        await self._finish(msg, event, lease, self.worker.exhausted(event, error))

    async def _finish(
        self,
        msg: Msg,
        event: RecordedEvent,
        lease: Lease,
        appends: Sequence[Append],
        lost: list[str] | None = None,
    ) -> None:
        """Commit the result fenced by the lease, retrying while Postgres is away, then ack.

        Only the attempt that still holds the lease commits; one that lost it leaves the
        message to the attempt that took over.
        """
        key = str(event.event_id)
        delay = 0.2
        oversized = False
        while True:
            try:
                result = await self.store.append_many(
                    appends, tracking=(self.worker.name, key), fence=self.leases.fence(lease)
                )
                break
            except LeaseLost as exc:
                log.warning("lease lost before commit; result discarded", error=str(exc))
                await _nak(msg, 0)
                return
            except ConcurrencyError as exc:  # the stream moved on since the handler read it
                log.warning("stream changed before commit; handled again", error=str(exc))
                with contextlib.suppress(Exception):
                    await self.leases.release(lease)  # the next attempt need not wait
                await _nak(msg, 0)
                return
            except EventTooLarge as exc:  # permanent: record the failure instead
                log.error("result too large to record", error=str(exc))
                reason = f"the result could not be recorded: {exc}"
                appends = [] if oversized else self.worker.exhausted(event, reason)
                oversized = True
                continue
            except Exception as exc:
                if lost:
                    log.warning("could not record result before the lease ran out", error=repr(exc))
                    await _nak(msg, 0)
                    return
                log.warning("could not record result; retrying", error=repr(exc), delay=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        if result is None:
            log.info("duplicate delivery: result was already recorded")
        else:
            log.info("handled", appended=[e.type for e in result])
        await _ack(msg)

    async def _heartbeat(self, msg: Msg) -> None:
        """In-progress acks keep JetStream from redelivering while the work goes on."""
        interval = max(self.ack_wait / 3, 0.1)
        while True:
            await asyncio.sleep(interval)
            try:
                await asyncio.wait_for(msg.in_progress(), interval)
            except asyncio.CancelledError:
                raise
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


def _cancelling() -> bool:
    """True if the current task itself was cancelled (shutdown), not only its handler."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _ack(msg: Msg) -> None:
    """Acknowledge; if NATS is away the message comes back and is recognised as tracked."""
    try:
        await msg.ack()
    except Exception as exc:
        log.warning("ack failed; the redelivery will be recognised", error=repr(exc))


async def _nak(msg: Msg, delay: float) -> None:
    """Ask for redelivery after ``delay``; if NATS is away the ack deadline does the same."""
    try:
        await msg.nak(delay=delay)
    except Exception as exc:
        log.warning("nak failed; JetStream redelivers after the ack wait", error=repr(exc))
