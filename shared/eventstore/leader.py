"""Single-writer roles (relay, projector) hold a session advisory lock while they work."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from .store import EventStore


@asynccontextmanager
async def leadership(store: EventStore, role: str, retry: float = 1.0) -> AsyncIterator[None]:
    """Wait until this process is the only holder of ``role``; release on exit or crash."""
    key = zlib.crc32(role.encode())
    conn = await store.pool.acquire()
    try:
        while not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            await asyncio.sleep(retry)
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", key)
    finally:
        await store.pool.release(conn)
