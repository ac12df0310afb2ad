"""What every service process shares: logging, connections, a health endpoint, clean shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import uvloop
from nats.aio.client import Client

from shared.artifacts import ArtifactStore, open_artifact_store
from shared.bus.jetstream import connect_nats
from shared.eventstore import EventStore
from shared.logging import configure_logging, get_logger
from shared.settings import Settings

log = get_logger(__name__)


@dataclass
class ServiceContext:
    name: str
    settings: Settings
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    _store: EventStore | None = None
    _nats: Client | None = None
    _artifacts: ArtifactStore | None = None

    async def store(self) -> EventStore:
        if self._store is None:
            if not self.settings.database_url:
                raise RuntimeError("CONDA_STORE_DATABASE_URL is not set")
            self._store = await EventStore.connect(self.settings.database_url)
        return self._store

    async def artifacts(self) -> ArtifactStore:
        if self._artifacts is None:
            self._artifacts = await open_artifact_store(self.settings)
        return self._artifacts

    async def nats(self) -> Client:
        if self._nats is None:
            self._nats = await connect_nats(self.settings.nats_url, self.name)
        return self._nats

    async def close(self) -> None:
        if self._nats is not None:
            with contextlib.suppress(Exception):
                await self._nats.drain()
        if self._store is not None:
            await self._store.close()


async def serve_health(name: str, host: str, port: int) -> asyncio.Server:
    """A minimal HTTP endpoint answering 200 on any path, for `up` and orchestrators."""
    body = json.dumps({"status": "ok", "service": name}).encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except Exception:  # a health probe that hangs up early is not our problem
            pass
        finally:
            writer.close()

    return await asyncio.start_server(handle, host, port)


def run_service(
    name: str,
    main: Callable[[ServiceContext], Awaitable[Any]],
    settings: Settings,
    health_port: int | None,
) -> None:
    """Run ``main`` until SIGINT/SIGTERM, with a health endpoint if a port is given."""
    configure_logging(settings.log_level, settings.log_format, service=name)

    async def runner() -> None:
        ctx = ServiceContext(name, settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, ctx.stop.set)
        health = await serve_health(name, settings.bind_host, health_port) if health_port else None
        log.info("service started", health_port=health_port)
        task = asyncio.create_task(main(ctx))
        stopper = asyncio.create_task(ctx.stop.wait())
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        task.cancel()
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        if health is not None:
            health.close()
        await ctx.close()
        log.info("service stopped")
        # rattler's tokio threads crash the interpreter at exit unless given a moment.
        await asyncio.sleep(0.05)

    # uvloop: the event loop and socket writes in C; the API spent most of its time there
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as loop_runner:
        loop_runner.run(runner())
