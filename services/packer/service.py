"""Packer process: the ``Solved`` consumer, the ``BuildCanceled`` listener and the store linker.

``main`` is what the launcher and ``python -m services.packer`` run; ``run_packer`` is the same
loop for callers that bring their own connections (tests, the embedded stack).
"""

from __future__ import annotations

import asyncio

from nats.aio.client import Client

from shared.bus.consumer import ConsumerRunner
from shared.eventstore import EventStore
from shared.service import ServiceContext
from shared.settings import Settings

from .cancel import listen_for_cancels
from .linker import StoreLinker
from .worker import PackerWorker


async def run_packer(
    worker: PackerWorker,
    store: EventStore,
    nc: Client,
    settings: Settings,
    stop: asyncio.Event,
) -> None:
    """Consume ``Solved`` with ``settings.packer_concurrency`` builds at once until ``stop``."""
    runner = ConsumerRunner(worker, store, nc, settings, concurrency=settings.packer_concurrency)
    linker = ConsumerRunner(StoreLinker(settings.store_root, store.pool), store, nc, settings)
    tasks = [
        asyncio.create_task(listen_for_cancels(nc, settings, worker.cancels, stop)),
        asyncio.create_task(runner.run(stop)),
        asyncio.create_task(linker.run(stop)),
    ]
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def main(ctx: ServiceContext) -> None:
    """Run until ``ctx.stop``; builds cut short by a stop are redelivered to a packer."""
    settings = ctx.settings
    store = await ctx.store()
    nc = await ctx.nats()
    artifacts = await ctx.artifacts()
    worker = PackerWorker(settings, artifacts, store.pool)
    try:
        await run_packer(worker, store, nc, settings, ctx.stop)
    finally:
        # rattler's tokio threads crash the interpreter at exit unless given a moment
        await asyncio.sleep(0.05)
