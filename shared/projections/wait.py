"""Read-your-writes: wait until the projector has applied a given log position."""

from __future__ import annotations

import asyncio

from shared.eventstore import EventStore

from .projector import POSITION_NAME


async def wait_for_projection(store: EventStore, position: int, timeout: float = 10.0) -> bool:
    """True once the read model includes ``position``; False on timeout (caller decides)."""
    woken = asyncio.Event()

    def notified(*_: object) -> None:
        woken.set()

    async with store.pool.acquire() as conn:
        await conn.add_listener("cs_projection", notified)
        try:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while True:
                woken.clear()
                if await store.load_position(POSITION_NAME, conn) >= position:
                    return True
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return False
                try:
                    await asyncio.wait_for(woken.wait(), min(remaining, 0.5))
                except TimeoutError:
                    pass
        finally:
            await conn.remove_listener("cs_projection", notified)
