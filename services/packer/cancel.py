"""Cancelling builds in progress: ``BuildCanceled`` events → the task building that build.

Every packer process needs every cancel (the build may run in any replica), so the listener is
an ephemeral ordered JetStream consumer per process, not a shared durable one. It starts at
new messages only: a cancel that arrived before a build started is caught by the worker, which
reads the build's stream before doing any work.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import DeliverPolicy

from shared.aio import raise_if_cancelled
from shared.bus.jetstream import ensure_stream
from shared.events import RecordedEvent
from shared.logging import get_logger
from shared.settings import Settings

log = get_logger(__name__)


class CancelRegistry:
    """Which task builds which build, and which of them we cancelled on purpose."""

    def __init__(self) -> None:
        self._tasks: dict[int, asyncio.Task[object]] = {}
        self._cancelled: set[int] = set()

    @contextlib.contextmanager
    def track(self, build_id: int) -> Iterator[None]:
        """Register the current task as the one building ``build_id`` for the block."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks[build_id] = task
        try:
            yield
        finally:
            if self._tasks.get(build_id) is task:
                del self._tasks[build_id]
            self._cancelled.discard(build_id)

    def cancel(self, build_id: int) -> bool:
        """Cancel the build's task if this process runs it; True if it did."""
        task = self._tasks.get(build_id)
        if task is None or task.done():
            return False
        self._cancelled.add(build_id)
        task.cancel(f"build {build_id} canceled")
        return True

    def was_cancelled(self, build_id: int) -> bool:
        """True if a CancelledError in the build's task came from ``cancel`` (not shutdown)."""
        return build_id in self._cancelled

    @property
    def running(self) -> list[int]:
        return sorted(self._tasks)


async def listen_for_cancels(
    nc: Client, settings: Settings, registry: CancelRegistry, stop: asyncio.Event
) -> None:
    """Apply every new ``BuildCanceled`` to ``registry`` until ``stop`` is set."""

    async def on_message(msg: Msg) -> None:
        try:
            event = RecordedEvent.from_json(msg.data)
            build_id = int(event.data["build_id"])
        except Exception as exc:
            log.warning("unreadable BuildCanceled message", error=repr(exc))
            return
        if registry.cancel(build_id):
            log.info("cancelling build in progress", build_id=build_id)

    js = nc.jetstream(timeout=5)
    while not stop.is_set():
        raise_if_cancelled()
        try:
            await ensure_stream(js, settings)
            sub = await js.subscribe(
                settings.subject("BuildCanceled"),
                cb=on_message,
                ordered_consumer=True,
                deliver_policy=DeliverPolicy.NEW,
            )
            break
        except Exception as exc:  # NATS not ready yet: the consumer side retries the same way
            log.warning("cancel listener setup failed; retrying", error=repr(exc))
            await asyncio.sleep(0.5)
    else:
        return
    try:
        await stop.wait()
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
