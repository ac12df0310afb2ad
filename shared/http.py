"""Serving an ASGI app inside a service process, stopped by the service's stop event."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import uvicorn

GRACEFUL_SHUTDOWN_S = 5.0


async def serve_app(
    app: Any, host: str, port: int, stop: asyncio.Event, *, keep_alive_s: float
) -> None:
    """Serve until ``stop``. ``keep_alive_s`` must stay above every client's idle timeout:
    uvicorn's default (5 s) equals many clients' own, so the server would close a connection
    just as a client reuses it, and the client sees a reset."""
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_keep_alive=keep_alive_s,
        # a live log stream or a stalled client must not hold a stopping service forever
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    server = uvicorn.Server(config)
    # The service runner owns SIGINT/SIGTERM; uvicorn must not take them over.
    server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign]
    serving = asyncio.create_task(server.serve())
    stopping = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({serving, stopping}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        server.should_exit = True
        stopping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await serving
