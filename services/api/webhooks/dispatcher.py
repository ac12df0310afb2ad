"""The webhook dispatcher: tails the log and POSTs each webhook the events it wants, in order.

It runs in the API process as one leader among the API replicas (the ``webhooks`` role), as
the watch_paths scanner does: no other service waits on it, so a slow or dead receiver delays
nothing but its own deliveries. Each webhook has its own task, HTTP connection and position
(``webhook_deliveries``): one receiver's timeouts never hold up another's deliveries, and an
event is delivered only after every earlier wanted one was (a failed delivery is retried,
with backoff up to a cap, until it succeeds or the webhook is deleted).

The position moves past an event once the receiver answered 2xx (and past events the webhook
does not want), in a transaction fenced by the lease; a crash between a receiver's answer and
that commit delivers the event again (at least once; the ``X-Conda-Store-Delivery`` header,
the event id, lets a receiver drop it). A replay is a ``WebhookReplayRequested`` event: the
leader sets the webhook's position back to its ``after``, once (``replay_version``).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

import httpx

from shared.events import RecordedEvent, stream_of_build
from shared.eventstore import EventStore
from shared.eventstore.leader import Lease, run_as_leader
from shared.eventstore.tail import LogTailer
from shared.logging import get_logger
from shared.webhooks import (
    STREAM,
    RetryPolicy,
    Webhook,
    delivery_headers,
    fold_webhooks,
    wants,
    webhook_secret,
)

from ..queries.events import build_arns, event_namespace
from . import deliveries, sender
from .deliveries import Attempt

log = get_logger(__name__)
ROLE = "webhooks"
BATCH = 200
SKIP_SAVE_S = 5.0
"""Positions moved only past unwanted events are saved this often (a restart re-skips them)."""
BUILD_CACHE = 10000


class Dispatcher:
    """Delivers to every live webhook while this process leads ``webhooks``."""

    def __init__(
        self,
        store: EventStore,
        signing_key: str,
        policy: RetryPolicy | None = None,
        lease_s: float = 10.0,
        poll_s: float = 1.0,
    ) -> None:
        self.store = store
        self.signing_key = signing_key
        self.policy = policy or RetryPolicy()
        self.lease_s = lease_s
        self.poll_s = poll_s

    async def run(self) -> None:
        """Forever: stand by, lead, reconnect after Postgres went away (``run_as_leader``)."""
        await run_as_leader(self.store, ROLE, self._lead, self.lease_s)

    async def _lead(self, lease: Lease) -> None:
        head = await self.store.last_position()  # before the stream: nothing falls between
        async with asyncio.TaskGroup() as group:
            workers = _Workers(self, lease, group)
            await workers.sync()
            async with LogTailer(self.store, head, poll_interval=self.poll_s) as tailer:
                async for batch in tailer.batches():
                    if any(e.stream == STREAM for e in batch):
                        await workers.sync()
                    tailer.position = batch[-1].global_position
                    workers.wake()


class _Workers:
    """One delivery task per live webhook, started, stopped and rewound as the stream says."""

    def __init__(self, dispatcher: Dispatcher, lease: Lease, group: asyncio.TaskGroup) -> None:
        self.dispatcher = dispatcher
        self.store = dispatcher.store
        self.lease = lease
        self.group = group
        self.running: dict[str, tuple[_Delivery, asyncio.Task[None]]] = {}

    def wake(self) -> None:
        for delivery, _ in self.running.values():
            delivery.wakeup.set()

    async def _stop(self, webhook_id: str) -> None:
        delivery_task = self.running.pop(webhook_id, None)
        if delivery_task is not None:
            delivery_task[1].cancel()
            await asyncio.gather(delivery_task[1], return_exceptions=True)

    async def sync(self) -> None:
        """Match the tasks to the stream: stop deleted webhooks, apply replay requests not
        applied yet, start new ones (from their registration) and resumed ones (from their
        saved position). Safe to repeat: it only ever acts on a difference."""
        hooks = fold_webhooks(await self.store.read_stream(STREAM))
        for webhook_id in [i for i in self.running if i not in hooks]:
            await self._stop(webhook_id)
        async with self.lease.fenced(self.store) as conn:
            await deliveries.forget(conn, set(hooks))
            for hook in hooks.values():
                await deliveries.start(conn, hook.webhook_id, hook.registered_position)
        rows = await deliveries.load(self.store.pool)
        replays = {
            i: h.replay
            for i, h in hooks.items()
            if h.replay and h.replay[0] > rows[i]["replay_version"]
        }
        for webhook_id in replays:
            await self._stop(webhook_id)
        if replays:
            async with self.lease.fenced(self.store) as conn:
                for webhook_id, (version, after) in replays.items():
                    await deliveries.rewind(conn, webhook_id, after, version)
                    log.info("webhook replay", webhook_id=webhook_id, after=after)
        rows = await deliveries.load(self.store.pool)
        for webhook_id, hook in hooks.items():
            if webhook_id in self.running:
                continue
            row = rows[webhook_id]
            delivery = _Delivery(self.dispatcher, self.lease, hook, row["position"])
            delivery.failures = row["failures"]
            task = self.group.create_task(delivery.run(), name=f"webhook-{webhook_id}")
            self.running[webhook_id] = (delivery, task)


class _Delivery:
    """One webhook's deliveries, in log order, from ``position``."""

    def __init__(self, dispatcher: Dispatcher, lease: Lease, hook: Webhook, position: int) -> None:
        self.store = dispatcher.store
        self.policy = dispatcher.policy
        self.poll_s = dispatcher.poll_s
        self.lease = lease
        self.hook = hook
        self.position = position
        self.saved = position
        self.failures = 0
        self.secret = webhook_secret(dispatcher.signing_key, hook.webhook_id)
        self.wakeup = asyncio.Event()
        self.builds: dict[int, str] = {}
        self.saved_at = asyncio.get_running_loop().time()

    async def run(self) -> None:
        async with sender.client() as http:
            while True:
                self.wakeup.clear()
                head = await self.store.last_position()
                types = list(self.hook.event_types) or None
                batch = await self.store.read_all(self.position, BATCH, types)
                if not batch:
                    # none of its types up to ``head``: commit order means none will appear
                    self.position = max(self.position, head)
                    await self._save_skipped()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.wakeup.wait(), self.poll_s)
                    continue
                namespaces = await self._namespaces(batch)
                for event in batch:
                    if wants(self.hook, event.type, namespaces.get(event.global_position)):
                        await self._deliver(http, event)
                        self.saved = event.global_position
                    self.position = event.global_position
                await self._save_skipped()

    async def _save_skipped(self) -> None:
        now = asyncio.get_running_loop().time()
        if self.position > self.saved and now - self.saved_at >= SKIP_SAVE_S:
            async with self.lease.fenced(self.store) as conn:
                await deliveries.advance(conn, self.hook.webhook_id, self.position)
            self.saved, self.saved_at = self.position, now

    async def _namespaces(self, batch: list[RecordedEvent]) -> dict[int, str | None]:
        """Each event's namespace as ``/api/v1/events/`` decides it (a build's events by the
        build's). A build the read model has not got yet is looked up in its own stream."""
        if not self.hook.namespaces:
            return {}
        ids = {e.data["build_id"] for e in batch if isinstance(e.data.get("build_id"), int)}
        missing = ids - self.builds.keys()
        if missing:
            if len(self.builds) > BUILD_CACHE:
                self.builds.clear()
            self.builds.update(await build_arns(self.store.pool, missing))
            for build_id in missing - self.builds.keys():
                first = await self.store.read_stream(stream_of_build(build_id))
                data = first[0].data if first else {}
                if data.get("namespace") and data.get("environment"):
                    self.builds[build_id] = f"{data['namespace']}/{data['environment']}"
        return {e.global_position: event_namespace(e, self.builds) for e in batch}

    async def _deliver(self, http: httpx.AsyncClient, event: RecordedEvent) -> None:
        """POST until the receiver takes it; every attempt recorded, waits per the policy."""
        body = event.to_json()
        headers = delivery_headers(self.secret, body, self.hook.webhook_id, event)
        while True:
            outcome = await sender.post(http, self.hook.url, body, headers, self.hook.timeout_s)
            self.failures = 0 if outcome.delivered else self.failures + 1
            delay = self.policy.delay_s(self.failures)
            attempt = Attempt(
                webhook_id=self.hook.webhook_id,
                position=event.global_position,
                event_id=event.event_id,
                event_type=event.type,
                duration_ms=outcome.duration_ms,
                status_code=outcome.status_code,
                error=outcome.error,
            )
            retry_at = datetime.now(UTC) + timedelta(seconds=delay) if self.failures else None
            async with self.lease.fenced(self.store) as conn:
                status = self.policy.status(self.failures)
                await deliveries.record(conn, attempt, status, self.failures, retry_at)
            if outcome.delivered:
                return
            log.warning(
                "webhook delivery failed",
                webhook_id=self.hook.webhook_id,
                event_type=event.type,
                global_position=event.global_position,
                error=outcome.error,
                failures=self.failures,
                retry_in_s=delay,
            )
            await asyncio.sleep(delay)
