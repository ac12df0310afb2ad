"""Relay and consumers against a real nats-server with JetStream and a real Postgres."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence

import pytest

from shared.bus.consumer import ConsumerRunner, HandlerContext, Worker
from shared.bus.jetstream import connect_nats, ensure_stream
from shared.bus.relay import Relay
from shared.embedded.nats import NatsServer
from shared.events import (
    BuildFailed,
    NamespaceMetadataSet,
    RecordedEvent,
    SettingsChanged,
    new_event,
)
from shared.eventstore import Append, EventStore
from shared.settings import Settings


class RecordingWorker(Worker):
    """Counts handler calls; optionally fails; appends one result per handled event."""

    name = "recorder"
    event_types = ("SettingsChanged",)

    def __init__(self, fail: Callable[[RecordedEvent, HandlerContext], bool] | None = None):
        self.calls: Counter[str] = Counter()
        self.fail = fail

    async def handle(self, event: RecordedEvent, ctx: HandlerContext) -> Sequence[Append]:
        self.calls[str(event.event_id)] += 1
        if self.fail and self.fail(event, ctx):
            raise RuntimeError(f"boom on attempt {ctx.attempt}")
        result = new_event(
            NamespaceMetadataSet(namespace="results", metadata={"of": str(event.event_id)}),
            causation=event,
        )
        return [Append("results", [result])]

    def exhausted(self, event: RecordedEvent, error: str) -> Sequence[Append]:
        return [
            Append("failures", [new_event(BuildFailed(build_id=0, phase="test", reason=error))])
        ]


async def start(coro) -> asyncio.Task:  # type: ignore[no-untyped-def]
    return asyncio.create_task(coro)


async def wait_until(predicate: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await _call(predicate):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError("condition not reached")
        await asyncio.sleep(0.05)


async def _call(predicate):  # type: ignore[no-untyped-def]
    value = predicate()
    if asyncio.iscoroutine(value):
        value = await value
    return value


@pytest.fixture
async def running(event_store: EventStore, settings: Settings) -> AsyncIterator[Callable]:
    """Start relay and a worker; cancel both at the end."""
    tasks: list[asyncio.Task] = []
    clients = []

    async def run(worker: Worker) -> None:
        nc_relay = await connect_nats(settings.nats_url, "relay")
        nc_worker = await connect_nats(settings.nats_url, "worker")
        clients.extend([nc_relay, nc_worker])
        tasks.append(asyncio.create_task(Relay(event_store, nc_relay, settings).run()))
        runner = ConsumerRunner(worker, event_store, nc_worker, settings, concurrency=2)
        tasks.append(asyncio.create_task(runner.run()))

    yield run
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for nc in clients:
        await nc.close()


def inputs(n: int) -> list:
    return [new_event(SettingsChanged(values={"n": i})) for i in range(n)]


async def test_events_appended_while_nats_is_down_all_arrive_once(
    event_store: EventStore, settings: Settings, nats_server: NatsServer, running
) -> None:
    worker = RecordingWorker()
    await running(worker)
    await event_store.append("warmup", inputs(1))
    await wait_until(lambda: sum(worker.calls.values()) == 1)

    nats_server.stop()
    for i in range(100):
        await event_store.append(f"in-{i}", inputs(1))
    await asyncio.sleep(1.0)
    assert sum(worker.calls.values()) == 1  # nothing could be delivered meanwhile
    nats_server.start()  # same port, same JetStream directory

    await wait_until(lambda: len(worker.calls) == 101, timeout=60)
    await asyncio.sleep(1.0)  # let any stray redelivery show itself
    assert len(worker.calls) == 101
    assert set(worker.calls.values()) == {1}
    assert len(await event_store.read_stream("results")) == 101


async def test_crashing_handler_is_redelivered_and_yields_one_result(
    event_store: EventStore, running
) -> None:
    worker = RecordingWorker(fail=lambda e, ctx: ctx.attempt == 1)
    await running(worker)
    [rec] = await event_store.append("crashy", inputs(1))
    await wait_until(lambda: worker.calls[str(rec.event_id)] == 2)
    await wait_until(lambda: event_store.stream_version("results"))
    await asyncio.sleep(0.5)
    results = await event_store.read_stream("results")
    assert len(results) == 1
    assert results[0].metadata.causation_id == str(rec.event_id)


class VersionedWorker(RecordingWorker):
    """Appends its result against the version of the ``results`` stream it read, so an
    append by someone else between its read and its commit makes the commit conflict."""

    def __init__(self, store: EventStore) -> None:
        super().__init__()
        self.store = store

    async def handle(self, event: RecordedEvent, ctx: HandlerContext) -> Sequence[Append]:
        [append] = await super().handle(event, ctx)
        version = await self.store.stream_version("results")
        if ctx.attempt == 1:  # someone else writes between this read and the commit
            other = NamespaceMetadataSet(namespace="results", metadata={"by": "someone else"})
            await self.store.append("results", [new_event(other)])
        return [Append(append.stream, append.events, expected_version=version)]


async def test_a_commit_on_a_stream_that_moved_on_is_handled_again(
    event_store: EventStore, running
) -> None:
    """The consumer does not retry a stale commit for ever: the message is redelivered, the
    handler decides again on the stream as it is now, and its result lands once."""
    worker = VersionedWorker(event_store)
    await running(worker)
    [rec] = await event_store.append("moved-on", inputs(1))
    await wait_until(lambda: worker.calls[str(rec.event_id)] == 2)
    await wait_until(lambda: event_store.stream_version("results"), timeout=10)
    await asyncio.sleep(0.5)
    results = await event_store.read_stream("results")
    assert [r.metadata.causation_id for r in results] == [None, str(rec.event_id)]
    assert worker.calls[str(rec.event_id)] == 2


async def test_duplicate_delivery_after_commit_does_not_run_twice(
    event_store: EventStore, settings: Settings, running
) -> None:
    worker = RecordingWorker()
    await running(worker)
    [rec] = await event_store.append("dup", inputs(1))
    await wait_until(lambda: worker.calls[str(rec.event_id)] == 1)
    await wait_until(lambda: event_store.stream_version("results"))
    # Publish the very same event again under another message id, as a crash between
    # commit and ack would redeliver it.
    nc = await connect_nats(settings.nats_url, "dup")
    js = nc.jetstream()
    await js.publish(settings.subject(rec.type), rec.to_json(), headers={"Nats-Msg-Id": "other"})
    await asyncio.sleep(1.5)
    await nc.close()
    assert worker.calls[str(rec.event_id)] == 1
    assert len(await event_store.read_stream("results")) == 1


async def test_retries_are_bounded_and_end_in_a_failure_event(
    event_store: EventStore, settings: Settings, running
) -> None:
    worker = RecordingWorker(fail=lambda e, ctx: True)
    await running(worker)
    [rec] = await event_store.append("always-fails", inputs(1))
    await wait_until(lambda: event_store.stream_version("failures"), timeout=30)
    await asyncio.sleep(1.0)
    assert worker.calls[str(rec.event_id)] == settings.consumer_max_deliver
    [failure] = await event_store.read_stream("failures")
    assert "boom on attempt" in failure.data["reason"]
    assert await event_store.read_stream("results") == []


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"type": "NoSuchEvent"}', b"\xff\xfe binary"],
    ids=["malformed-json", "unknown-type", "binary"],
)
async def test_unusable_message_is_parked_and_the_consumer_goes_on(
    event_store: EventStore, settings: Settings, running, raw: bytes
) -> None:
    worker = RecordingWorker()
    await running(worker)
    nc = await connect_nats(settings.nats_url, "bad")
    js = nc.jetstream()
    await ensure_stream(js, settings)
    await js.publish(settings.subject("SettingsChanged"), raw)
    await nc.close()
    [rec] = await event_store.append("after-bad", inputs(1))
    await wait_until(lambda: worker.calls[str(rec.event_id)] == 1)
    await wait_until(lambda: event_store.stream_version("parked-recorder"))
    [parked] = await event_store.read_stream("parked-recorder")
    assert parked.type == "MessageParked"
    assert parked.data["payload"] == raw.decode("utf-8", errors="replace")
    assert parked.data["error"]
