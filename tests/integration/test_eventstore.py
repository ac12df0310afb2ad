"""Event store against a real Postgres: append-only, optimistic concurrency, gap-free tailing."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from shared.events import NamespaceCreated, SettingsChanged, new_event
from shared.eventstore import NO_STREAM, Append, ConcurrencyError, EventStore


def ev(i: int = 0):
    return new_event(SettingsChanged(values={"i": i}), actor="tester")


async def test_append_and_read_stream(event_store: EventStore) -> None:
    recorded = await event_store.append("s-1", [ev(1), ev(2)], NO_STREAM)
    assert [r.version for r in recorded] == [1, 2]
    assert recorded[0].global_position < recorded[1].global_position
    again = await event_store.read_stream("s-1")
    assert [r.event_id for r in again] == [r.event_id for r in recorded]
    assert again[1].data == {"namespace": None, "environment": None, "values": {"i": 2}}
    assert again[0].metadata.actor == "tester"
    assert await event_store.stream_version("s-1") == 2


async def test_wrong_expected_version_raises_concurrency_error(event_store: EventStore) -> None:
    await event_store.append("s-2", [ev()], NO_STREAM)
    with pytest.raises(ConcurrencyError) as err:
        await event_store.append("s-2", [ev()], NO_STREAM)
    assert err.value.actual == 1 and err.value.expected == 0
    with pytest.raises(ConcurrencyError):
        await event_store.append("s-2", [ev()], 5)
    await event_store.append("s-2", [ev()], 1)  # the right version is accepted
    assert await event_store.stream_version("s-2") == 2


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET type = 'Forged'",
        "DELETE FROM events",
        "TRUNCATE events",
    ],
)
async def test_database_rejects_rewriting_history(event_store: EventStore, statement: str) -> None:
    await event_store.append("s-3", [ev()])
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await event_store.pool.execute(statement)
    assert len(await event_store.read_stream("s-3")) == 1


async def test_append_many_is_atomic_and_tracking_dedupes(event_store: EventStore) -> None:
    appends = [Append("a", [ev(1)]), Append("b", [ev(2)], NO_STREAM)]
    first = await event_store.append_many(appends, tracking=("worker", "msg-1"))
    assert first is not None and len(first) == 2
    assert await event_store.append_many(appends, tracking=("worker", "msg-1")) is None
    # a failing part rolls back the whole write, tracking record included
    with pytest.raises(ConcurrencyError):
        await event_store.append_many(
            [Append("c", [ev()]), Append("b", [ev()], NO_STREAM)], tracking=("worker", "msg-2")
        )
    assert await event_store.read_stream("c") == []
    assert not await event_store.is_tracked("worker", "msg-2")


async def test_payload_roundtrip(event_store: EventStore) -> None:
    [rec] = await event_store.append("ns-x", [new_event(NamespaceCreated(namespace="x"))])
    [back] = await event_store.read_all(rec.global_position - 1, 1)
    assert back.payload() == NamespaceCreated(namespace="x")


async def test_concurrent_writers_tail_reader_sees_every_event_once_in_order(
    event_store: EventStore,
) -> None:
    writers, per_writer, batch = 8, 2000, 1
    total = writers * per_writer
    seen: list[int] = []
    done = asyncio.Event()

    async def writer(w: int) -> None:
        for i in range(0, per_writer, batch):
            await event_store.append(f"w-{w}", [ev(i + j) for j in range(batch)])

    async def reader() -> None:
        pos = 0
        while len(seen) < total:
            got = await event_store.read_all(pos, 500)
            if not got:
                if done.is_set() and pos >= await event_store.last_position():
                    break
                await asyncio.sleep(0.001)
                continue
            for r in got:
                seen.append(r.global_position)
            pos = got[-1].global_position

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(w) for w in range(writers)))
    done.set()
    await asyncio.wait_for(reading, 60)
    assert len(seen) == total
    assert seen == sorted(seen)
    assert len(set(seen)) == total
    # every stream's events are all there, versions contiguous
    for w in range(writers):
        versions = [r.version for r in await event_store.read_stream(f"w-{w}")]
        assert versions == list(range(1, per_writer + 1))
