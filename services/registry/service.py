"""Registry process: the OCI distribution API (pull side) plus the image preparer, the image
builder and blob GC.

``main`` serves ``/v2/`` on ``settings.registry_port`` (5000 by default, the user guide's
``localhost:5000/<namespace>/<environment>``) and runs the workers until ``ctx.stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass

from fastapi import FastAPI

from shared.artifacts import ArtifactStore
from shared.bus.consumer import ConsumerRunner
from shared.deployment_settings import load_deployment_defaults
from shared.eventstore import EventStore
from shared.http import serve_app
from shared.logging import get_logger
from shared.projections.store import ensure_read_model
from shared.service import ServiceContext
from shared.settings import Settings

from .access import Access
from .app import create_app
from .blobs import Blobs
from .builder import ImageBuilder
from .dynamic import DynamicImages
from .gc import BlobCollector
from .preparer import ImagePreparer
from .resolve import Resolver
from .waiter import BuildWaiter

log = get_logger(__name__)

__all__ = ["Registry", "create_app", "main", "open_registry"]


@dataclass
class Registry:
    """Everything one registry process runs, wired together (tests use it too)."""

    app: FastAPI
    waiter: BuildWaiter
    builder: ImageBuilder
    preparer: ImagePreparer
    collector: BlobCollector


async def open_registry(
    settings: Settings,
    store: EventStore,
    nc,
    artifacts: ArtifactStore,  # type: ignore[no-untyped-def]
) -> Registry:
    """Build the app and workers; the caller serves the app and runs the workers."""
    await ensure_read_model(store.pool)  # pulls read builds, maybe before a projector ran
    blobs = Blobs(artifacts)
    waiter = BuildWaiter(nc, settings)
    await waiter.start()
    dynamic = DynamicImages(store, settings, load_deployment_defaults(os.environ))
    resolver = Resolver(store, blobs, waiter, dynamic, settings)
    app = create_app(Access(settings, store.pool), resolver, blobs, settings.max_body_bytes)
    builder = ImageBuilder(artifacts, settings)
    collector = BlobCollector(artifacts, builder.stagings)
    return Registry(app, waiter, builder, ImagePreparer(builder), collector)


async def main(ctx: ServiceContext) -> None:
    settings = ctx.settings
    store = await ctx.store()
    nc = await ctx.nats()
    artifacts = await ctx.artifacts()
    registry = await open_registry(settings, store, nc, artifacts)
    workers = [
        ConsumerRunner(registry.builder, store, nc, settings, concurrency=1).run(ctx.stop),
        ConsumerRunner(registry.preparer, store, nc, settings, concurrency=1).run(ctx.stop),
        ConsumerRunner(registry.collector, store, nc, settings).run(ctx.stop),
        serve_app(
            registry.app,
            settings.bind_host,
            settings.registry_port,
            ctx.stop,
            keep_alive_s=settings.http_keep_alive_s,
        ),
    ]
    tasks = [asyncio.create_task(w) for w in workers]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*tasks, return_exceptions=True)
        await registry.waiter.stop()
