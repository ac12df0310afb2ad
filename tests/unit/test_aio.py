"""Loops stop when cancelled even if an await swallowed the cancellation (Python 3.11's
``wait_for`` does so when the cancel races with the result, and nats-py's fetch uses it)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from nats.aio.client import Client

from shared.aio import raise_if_cancelled
from shared.bus.consumer import ConsumerRunner, Worker
from shared.settings import Settings


async def test_raise_if_cancelled_sees_a_swallowed_cancel() -> None:
    reached = asyncio.Event()

    async def swallowing() -> str:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            pass  # what the racing wait_for does
        reached.set()
        raise_if_cancelled()
        return "kept running"

    task = asyncio.create_task(swallowing())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reached.is_set()


async def test_raise_if_cancelled_is_quiet_otherwise() -> None:
    raise_if_cancelled()


class SwallowingSubscription:
    """A pull subscription whose fetch loses the cancel, as nats-py's can on 3.11."""

    def __init__(self) -> None:
        self.fetches = 0

    async def fetch(self, batch: int, timeout: float) -> list[Any]:
        self.fetches += 1
        try:
            await asyncio.sleep(timeout)
        except asyncio.CancelledError:
            pass
        raise TimeoutError


class IdleWorker(Worker):
    name = "idle"
    event_types = ("Nothing",)

    async def handle(self, event: Any, ctx: Any) -> list[Any]:
        return []


async def test_consumer_loop_stops_after_a_swallowed_cancel(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(data_dir=tmp_path)
    runner = ConsumerRunner(IdleWorker(), None, Client(), settings)  # type: ignore[arg-type]
    sub = SwallowingSubscription()

    async def setup() -> SwallowingSubscription:
        return sub

    runner.setup = setup  # type: ignore[method-assign]
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        while sub.fetches == 0:
            await asyncio.sleep(0.01)
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=3)
        assert done, "the consumer loop kept fetching after it was cancelled"
        assert sub.fetches == 1
    finally:
        stop.set()  # ends a loop that ignored the cancel, so a failure cannot hang the suite
        await asyncio.wait({task}, timeout=3)
