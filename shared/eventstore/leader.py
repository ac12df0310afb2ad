"""Single-writer roles (relay, projector): one leader at a time, standbys take over promptly.

The leader holds a session advisory lock on a connection it keeps busy with a heartbeat; that
session has ``idle_session_timeout`` set to the lease, so a leader that stops answering
(SIGSTOP, a hung host, a cut network) loses its session, and with it the lock, within one lease,
while a crashed leader loses it at once. When the heartbeat fails (the session is gone, Postgres
restarted) the work is stopped at once (``LeadershipLost``): a standby may lead already.

Each new leader starts a new *term*; its writes run in transactions that first check the term
(``Lease.fenced``), so a paused leader that wakes up after a standby took over cannot write.

``run_as_leader`` runs the work under leadership forever: it stands by again after losing the
lease, and waits for Postgres with backoff when it goes away, in the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from shared.aio import raise_if_cancelled
from shared.logging import get_logger

from .store import EventStore

log = get_logger(__name__)

DEFAULT_LEASE_S = 10.0
HEALTHY_AFTER_S = 30.0
"""A run that lasted this long resets the backoff: the next failure is retried at once."""


class LeadershipLost(Exception):
    """This process no longer leads ``role``: its session ended and a standby may lead."""

    def __init__(self, role: str, reason: str) -> None:
        super().__init__(f"{role}: leadership lost ({reason})")
        self.role = role


@dataclass(frozen=True)
class Lease:
    """The right to write as ``role`` during ``term``; valid until a later term begins."""

    role: str
    term: int
    lease_s: float

    async def check(self, conn: asyncpg.Connection) -> None:
        """Inside a transaction: raise ``LeadershipLost`` unless this term is still the current
        one. The row lock taken here makes a new leader wait for the transaction to end, and the
        transaction may idle no longer than a lease, so a pause here cannot block a takeover."""
        await conn.execute(f"SET LOCAL idle_in_transaction_session_timeout = {_ms(self.lease_s)}")
        current = await conn.fetchval(
            "SELECT term FROM leader_terms WHERE role = $1 FOR SHARE", self.role
        )
        if current != self.term:
            raise LeadershipLost(self.role, f"term {self.term} ended, term {current} began")

    @asynccontextmanager
    async def fenced(self, store: EventStore) -> AsyncIterator[asyncpg.Connection]:
        """A transaction that commits only while this lease is current."""
        async with store.transaction() as conn:
            await self.check(conn)
            yield conn


def _ms(seconds: float) -> int:
    return max(int(seconds * 1000), 1)


async def _begin_term(conn: asyncpg.Connection, role: str) -> int:
    return int(
        await conn.fetchval(
            "INSERT INTO leader_terms (role, term) VALUES ($1, 1) "
            "ON CONFLICT (role) DO UPDATE SET term = leader_terms.term + 1 RETURNING term",
            role,
        )
    )


async def _drop(store: EventStore, conn: asyncpg.Connection) -> None:
    """Close the lock session (Postgres releases its lock at once) and return it to the pool,
    which replaces it; never a reset racing the session's idle timeout."""
    with contextlib.suppress(Exception):  # the pool took back a session the server closed
        conn.terminate()
        await store.pool.release(conn)


async def _locked_session(
    store: EventStore, role: str, lease_s: float, retry: float
) -> asyncpg.Connection:
    """A session that holds ``role``'s lock, waited for as a standby."""
    key = zlib.crc32(role.encode())
    conn = await store.pool.acquire()
    try:
        await conn.execute(f"SET idle_session_timeout = {_ms(lease_s)}")
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            await asyncio.sleep(min(retry, lease_s / 3))
    except BaseException:
        await _drop(store, conn)
        raise
    return conn


@asynccontextmanager
async def leadership(
    store: EventStore, role: str, lease_s: float = DEFAULT_LEASE_S, retry: float = 1.0
) -> AsyncIterator[Lease]:
    """Wait until this process leads ``role``, then run the body as leader.

    If the lease is lost while the body runs, the body is cancelled and ``LeadershipLost`` is
    raised. The lock goes with the session on exit or crash.
    """
    conn = await _locked_session(store, role, lease_s, retry)
    try:
        lease = Lease(role, await _begin_term(conn, role), lease_s)
        body = asyncio.current_task()
        assert body is not None
        lost: list[str] = []

        async def keep_alive() -> None:
            try:
                while True:
                    raise_if_cancelled()  # a cancel can be lost in a query that completes
                    await asyncio.sleep(lease_s / 3)
                    await conn.fetchval("SELECT 1", timeout=lease_s)
            except Exception as exc:  # session gone: a standby may lead already
                lost.append(repr(exc))
                log.warning("leadership lost", role=role, term=lease.term, error=repr(exc))
                body.cancel()

        watcher = asyncio.create_task(keep_alive())
        try:
            yield lease
        except asyncio.CancelledError:
            if lost and body.uncancel() == 0:
                raise LeadershipLost(role, lost[0]) from None
            raise
        finally:
            watcher.cancel()
            await asyncio.gather(watcher, return_exceptions=True)
    finally:
        await _drop(store, conn)


async def run_as_leader(
    store: EventStore,
    role: str,
    work: Callable[[Lease], Awaitable[None]],
    lease_s: float = DEFAULT_LEASE_S,
    max_backoff: float = 10.0,
) -> None:
    """Run ``work`` under ``role``'s leadership forever: stand by again when the lease is lost,
    reconnect with backoff when Postgres goes away.

    ``work`` must load its state from the store each time it starts (its position, its
    model): after a failure nothing it held in memory is trusted.
    """
    delay = 0.2
    while True:
        started = time.monotonic()
        try:
            async with leadership(store, role, lease_s) as lease:
                log.info("leadership taken", role=role, term=lease.term)
                await work(lease)
            return
        except asyncio.CancelledError:
            raise
        except LeadershipLost as exc:
            log.warning("standing by", role=role, reason=str(exc))
        except Exception as exc:
            if time.monotonic() - started > HEALTHY_AFTER_S:
                delay = 0.2
            log.warning("lost the store; reconnecting", role=role, error=repr(exc), delay=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff)
