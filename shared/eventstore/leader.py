"""Single-writer roles (relay, projector): one holder of a session advisory lock at a time.

A standby waits on the lock. The leader keeps its lock connection and checks it every few
seconds; if that connection dies (Postgres restarted, the network cut it), the lock is gone
and a standby may already lead, so the work is stopped at once (``LeadershipLost``).
``run_as_leader`` then starts over: waits for Postgres, takes the lock again (or waits as a
standby), reloads its state and resumes, with backoff, in the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from shared.logging import get_logger

from .store import EventStore

log = get_logger(__name__)

CHECK_INTERVAL_S = 2.0
HEALTHY_AFTER_S = 30.0
"""A run that lasted this long resets the backoff: the next failure is retried at once."""


class LeadershipLost(Exception):
    """The lock connection died: another process may lead now."""


@asynccontextmanager
async def leadership(
    store: EventStore, role: str, retry: float = 1.0, check_interval: float = CHECK_INTERVAL_S
) -> AsyncIterator[None]:
    """Wait until this process is the only holder of ``role``; release on exit or crash.

    The body is cancelled, and ``LeadershipLost`` raised, as soon as the lock connection
    stops answering.
    """
    key = zlib.crc32(role.encode())
    conn = await store.pool.acquire()
    try:
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            await asyncio.sleep(retry)
        body = asyncio.current_task()
        assert body is not None
        lost = asyncio.Event()

        async def watch() -> None:
            while True:
                await asyncio.sleep(check_interval)
                try:
                    await asyncio.wait_for(conn.fetchval("SELECT 1"), check_interval)
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    log.warning("leadership lost", role=role, error=repr(exc))
                    lost.set()
                    body.cancel()
                    return

        watcher = asyncio.create_task(watch())
        try:
            yield
        except asyncio.CancelledError:
            if lost.is_set() and body.uncancel() == 0:
                raise LeadershipLost(role) from None
            raise
        finally:
            watcher.cancel()
            with contextlib.suppress(Exception):
                await conn.execute("SELECT pg_advisory_unlock($1)", key)
    finally:
        with contextlib.suppress(Exception):
            await store.pool.release(conn)


async def run_as_leader(
    store: EventStore,
    role: str,
    work: Callable[[], Awaitable[None]],
    max_backoff: float = 10.0,
) -> None:
    """Run ``work`` under ``role``'s leadership forever, reconnecting when Postgres goes away.

    ``work`` must load its state from the store each time it starts (its position, its
    model): after a failure nothing it held in memory is trusted.
    """
    delay = 0.2
    while True:
        started = time.monotonic()
        try:
            async with leadership(store, role):
                log.info("leading", role=role)
                await work()
            return
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if time.monotonic() - started > HEALTHY_AFTER_S:
                delay = 0.2
            log.warning("lost the store; reconnecting", role=role, error=repr(exc), delay=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_backoff)
