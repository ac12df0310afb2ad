"""One set of assertions over both event logs: the Postgres ``EventStore`` and the
``InMemoryEventStore`` unit tests use in its place. A divergence fails here."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from shared.embedded.postgres import PostgresCluster
from shared.events import BuildStarted, NamespaceCreated, WatchedFileChanged, new_event
from shared.eventstore import (
    MAX_EVENT_BYTES,
    NO_STREAM,
    Append,
    ConcurrencyError,
    EventLog,
    EventStore,
    EventTooLarge,
    InMemoryEventStore,
)


@pytest.fixture(params=["postgres", "memory"])
async def log(
    request: pytest.FixtureRequest, pg_cluster: PostgresCluster
) -> AsyncIterator[EventLog]:
    if request.param == "memory":
        yield InMemoryEventStore()
        return
    store = await EventStore.connect(
        await pg_cluster.create_database(f"contract_{uuid.uuid4().hex}")
    )
    yield store
    await store.close()


def started(build_id: int) -> Any:
    return new_event(BuildStarted(build_id=build_id))


async def test_positions_versions_and_expected_versions(log: EventLog) -> None:
    base = await log.last_position()
    first = await log.append("s-a", [started(1), started(1)], NO_STREAM)
    assert [e.version for e in first] == [1, 2]
    assert [e.global_position for e in first] == [base + 1, base + 2]
    assert first[0].type == "BuildStarted" and first[0].data["build_id"] == 1
    with pytest.raises(ConcurrencyError):
        await log.append("s-a", [started(1)], NO_STREAM)  # exists already
    with pytest.raises(ConcurrencyError):
        await log.append("s-a", [started(1)], 1)  # it is at 2
    third = await log.append("s-a", [started(1)], 2)
    assert third[0].version == 3 and await log.stream_version("s-a") == 3
    await log.append("s-b", [started(2)])  # None: any version
    assert [e.version for e in await log.read_stream("s-a", 2)] == [2, 3]
    assert await log.read_stream("nothing") == [] and await log.stream_version("nothing") == 0
    assert await log.append("s-a", []) == []
    assert await log.last_position() == base + 4


async def test_append_many_is_all_or_nothing_and_tracked_once(log: EventLog) -> None:
    await log.append("m-a", [started(1)])
    before = await log.last_position()
    with pytest.raises(ConcurrencyError):
        await log.append_many(
            [Append("m-b", [started(2)], NO_STREAM), Append("m-a", [started(1)], 0)]
        )
    assert await log.last_position() == before and await log.read_stream("m-b") == []
    written = await log.append_many(
        [Append("m-b", [started(2)], NO_STREAM), Append("m-a", [started(1)], 1)],
        tracking=("worker", "message-1"),
    )
    assert written is not None and [(e.stream, e.version) for e in written] == [
        ("m-b", 1),
        ("m-a", 2),
    ]
    assert await log.is_tracked("worker", "message-1")
    again = await log.append_many([Append("m-a", [started(1)])], tracking=("worker", "message-1"))
    assert again is None and await log.stream_version("m-a") == 2


async def test_read_all_by_position_and_type_and_the_size_limit(log: EventLog) -> None:
    base = await log.last_position()
    await log.append("r-a", [new_event(NamespaceCreated(namespace="r"))])
    await log.append("r-b", [started(3), started(3)])
    everything = await log.read_all(base)
    assert [e.type for e in everything] == ["NamespaceCreated", "BuildStarted", "BuildStarted"]
    assert [e.type for e in await log.read_all(base, types=["NamespaceCreated"])] == [
        "NamespaceCreated"
    ]
    assert len(await log.read_all(base, limit=2)) == 2
    huge = WatchedFileChanged(path="x" * MAX_EVENT_BYTES, sha256="0", build_id=1)
    with pytest.raises(EventTooLarge):
        await log.append("r-c", [new_event(huge)])
    assert await log.read_stream("r-c") == []
    assert await log.next_build_id() < await log.next_build_id()
