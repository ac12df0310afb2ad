"""An ASGI app served by uvicorn in this event loop, on a free loopback port, once healthy."""

from __future__ import annotations

import asyncio

import httpx

from shared.http import serve_app
from shared.settings import Settings


async def serve_healthy(app: object, port: int) -> tuple[asyncio.Task[None], asyncio.Event]:
    """Start ``app`` on 127.0.0.1:``port`` and return once ``/health`` answers 200; set the
    event and await the task to stop it."""
    stop = asyncio.Event()
    keep_alive = Settings().http_keep_alive_s
    task = asyncio.create_task(serve_app(app, "127.0.0.1", port, stop, keep_alive_s=keep_alive))
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                if (await client.get(f"http://127.0.0.1:{port}/health")).status_code == 200:
                    return task, stop
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.05)
    stop.set()
    await task
    raise RuntimeError(f"server on port {port} did not start")
