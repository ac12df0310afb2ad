"""An ASGI app served by uvicorn in this event loop, on a free loopback port, once healthy."""

from __future__ import annotations

import asyncio

import httpx

from shared.http import serve_app


async def serve_healthy(app: object, port: int) -> tuple[asyncio.Task[None], asyncio.Event]:
    """Start ``app`` on 127.0.0.1:``port`` and return once ``/health`` answers 200; set the
    event and await the task to stop it."""
    stop = asyncio.Event()
    task = asyncio.create_task(serve_app(app, "127.0.0.1", port, stop))
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
