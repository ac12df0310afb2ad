"""Leadership of the single-writer roles against a real Postgres: one leader at a time, a standby
that takes over, and a fence that stops a deposed leader from writing.

A paused leader process (SIGSTOP) is in tests/faults/test_many_machines.py; here its effect on
Postgres is played directly: its session ends (as ``idle_session_timeout`` ends it).
"""

from __future__ import annotations

import asyncio
import random
import zlib

import asyncpg
import pytest

from shared.eventstore import EventStore
from shared.eventstore.leader import LeadershipLost, Lease, leadership


async def lead(store: EventStore, role: str, leases: list[Lease], lease_s: float = 1.0) -> None:
    """Lead ``role`` until cancelled or deposed, recording the lease."""
    async with leadership(store, role, lease_s, retry=0.05) as lease:
        leases.append(lease)
        await asyncio.Event().wait()


async def until(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.02)


async def lock_holder(store: EventStore, role: str) -> int:
    return int(
        await store.pool.fetchval(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND classid = 0 AND objid = $1::bigint::oid",
            zlib.crc32(role.encode()),
        )
    )


async def test_the_standby_leads_once_the_leader_exits_in_a_new_term(
    event_store: EventStore,
) -> None:
    first: list[Lease] = []
    second: list[Lease] = []
    a = asyncio.create_task(lead(event_store, "role-a", first))
    await until(lambda: first)
    b = asyncio.create_task(lead(event_store, "role-a", second))
    await asyncio.sleep(0.5)  # B tried ten times meanwhile
    assert not second, "two leaders at once"
    a.cancel()
    await asyncio.gather(a, return_exceptions=True)
    await until(lambda: second)
    assert second[0].term == first[0].term + 1
    b.cancel()
    await asyncio.gather(b, return_exceptions=True)


async def test_a_leader_whose_session_ended_is_deposed_and_can_no_longer_write(
    event_store: EventStore,
) -> None:
    first: list[Lease] = []
    second: list[Lease] = []
    a = asyncio.create_task(lead(event_store, "role-b", first))
    await until(lambda: first)
    b = asyncio.create_task(lead(event_store, "role-b", second))
    # what Postgres does to the session of a leader that stopped answering for a lease
    await event_store.pool.execute(
        "SELECT pg_terminate_backend($1)", await lock_holder(event_store, "role-b")
    )
    await until(lambda: second)
    with pytest.raises(LeadershipLost):
        await asyncio.wait_for(a, 10)  # the old leader's work was stopped
    with pytest.raises(LeadershipLost):
        async with first[0].fenced(event_store) as conn:
            await conn.execute("SELECT 1")  # a write it would make now
    async with second[0].fenced(event_store) as conn:
        assert await conn.fetchval("SELECT 1") == 1
    b.cancel()
    await asyncio.gather(b, return_exceptions=True)


async def test_leading_ends_on_every_cancel_even_when_the_heartbeat_is_mid_query(
    event_store: EventStore,
) -> None:
    """A heartbeat every 2 ms keeps the watcher mostly inside its query, so some cancel lands
    as the query completes (where Python 3.11's wait_for forgets the cancel); a short lease also
    ends sessions that idle, which must not leak out of a cancelled leadership."""
    rng = random.Random(14)
    for _ in range(120):
        leases: list[Lease] = []
        task = asyncio.create_task(lead(event_store, "role-c", leases, lease_s=0.006))
        await asyncio.sleep(rng.random() * 0.03)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=10)
        assert done, "a cancelled leader kept running"
        # ended by the cancel, or just before it by a lease this short running out (the
        # leader's session, or a standby's waiting one, idle for longer than 6 ms)
        lapsed = (LeadershipLost, asyncpg.PostgresConnectionError)
        assert task.cancelled() or isinstance(task.exception(), lapsed), task.exception()
