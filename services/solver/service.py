"""Solver process: the SpecSubmitted consumer and the NATS solve endpoint, one resolver."""

from __future__ import annotations

import asyncio
import contextlib

from nats.aio.client import Client

from shared.aio import raise_if_cancelled
from shared.bus.consumer import ConsumerRunner
from shared.logging import get_logger
from shared.service import ServiceContext

from .cache import SolveCache
from .remote import serve
from .resolve import Resolver
from .updates import UpdateChecker
from .worker import SolverWorker

log = get_logger(__name__)


async def main(ctx: ServiceContext) -> None:
    """Run until ``ctx.stop``; the launcher and ``python -m services.solver`` both call this."""
    settings = ctx.settings
    store = await ctx.store()
    nc = await ctx.nats()
    artifacts = await ctx.artifacts()
    resolver = Resolver.from_settings(settings, store.pool)
    worker = SolverWorker(
        resolver,
        artifacts,
        store.pool,
        settings.solver_test_delay_s,
        store_root=settings.store_root,
    )
    runner = ConsumerRunner(worker, store, nc, settings, concurrency=4)
    checks = ConsumerRunner(UpdateChecker(resolver), store, nc, settings, concurrency=1)
    tasks = [
        asyncio.create_task(runner.run(ctx.stop)),
        asyncio.create_task(checks.run(ctx.stop)),
        asyncio.create_task(serve(nc, resolver, settings, ctx.stop)),
    ]
    if settings.solve_cache_max_age_days > 0:
        tasks.append(
            asyncio.create_task(
                prune_periodically(resolver.cache, settings.solve_cache_max_age_days, ctx.stop)
            )
        )
    try:
        await ctx.stop.wait()
    finally:
        # The launcher cancels us right after ctx.stop; finish cleaning up regardless.
        cleanup = asyncio.ensure_future(_shutdown(tasks, resolver, nc))
        cancelled = False
        while not cleanup.done():
            try:
                await asyncio.shield(cleanup)
            except asyncio.CancelledError:
                cancelled = True
        if cancelled:
            raise asyncio.CancelledError


PRUNE_INTERVAL_S = 3600.0


async def prune_periodically(cache: SolveCache, max_age_days: float, stop: asyncio.Event) -> None:
    """Prune the solve cache now and every hour; any replica may do it (the DELETE is safe
    to run twice)."""
    while not stop.is_set():
        raise_if_cancelled()
        try:
            removed = await cache.prune(max_age_days)
            if removed:
                log.info("solve cache pruned", removed=removed, max_age_days=max_age_days)
        except Exception:
            log.warning("solve cache prune failed", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), PRUNE_INTERVAL_S)


async def _shutdown(tasks: list[asyncio.Task[None]], resolver: Resolver, nc: Client) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if resolver.indexer is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(resolver.indexer.wait_idle(), 5)
    # Close rather than let ServiceContext drain: draining a JetStream pull subscription
    # waits out the drain timeout (30 s). Unacked messages are simply redelivered.
    with contextlib.suppress(Exception):
        await nc.close()
    # rattler's tokio threads crash the interpreter at exit unless given a moment
    await asyncio.sleep(0.05)
