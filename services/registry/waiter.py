"""Wait for a build's image by listening to its events on NATS (no polling loop).

One core-NATS subscription per process on the subjects that end an image's wait
(``ImagePushed``, ``ImageFailed``, ``BuildFailed``, ``BuildCanceled``, ``BuildDeleted``);
each waiter registers a future for its build id *before* it reads the build's stream, so an
event published in between is never missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import defaultdict
from collections.abc import AsyncIterator, Callable

from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from shared.logging import get_logger
from shared.settings import Settings

log = get_logger(__name__)

WAKING_EVENTS = ("ImagePushed", "ImageFailed", "BuildFailed", "BuildCanceled", "BuildDeleted")
TAG_EVENTS = ("Packed", "CurrentBuildSet", "EnvironmentDeleted", "NamespaceDeleted")


class BuildWaiter:
    def __init__(self, nc: Client, settings: Settings) -> None:
        self.nc = nc
        self.settings = settings
        self._waiting: dict[int, set[asyncio.Event]] = defaultdict(set)
        self._subs: list[Subscription] = []
        self.on_event: Callable[[], None] | None = None

    async def start(self) -> None:
        for event_type in WAKING_EVENTS + TAG_EVENTS:
            self._subs.append(
                await self.nc.subscribe(self.settings.subject(event_type), cb=self._on_msg)
            )

    async def stop(self) -> None:
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self._subs.clear()

    async def _on_msg(self, msg: Msg) -> None:
        if self.on_event is not None:
            self.on_event()
        try:
            build_id = int(json.loads(msg.data)["data"]["build_id"])
        except (ValueError, KeyError, TypeError):
            return
        for woken in self._waiting.get(build_id, ()):
            woken.set()

    @contextlib.asynccontextmanager
    async def watch(self, build_id: int) -> AsyncIterator[asyncio.Event]:
        """An event set whenever something that may end the wait happens to ``build_id``."""
        woken = asyncio.Event()
        self._waiting[build_id].add(woken)
        try:
            yield woken
        finally:
            self._waiting[build_id].discard(woken)
            if not self._waiting[build_id]:
                del self._waiting[build_id]
