"""Garbage collection: deleting a build, environment or namespace removes its images' blobs
that no other image uses.

Reference counting over the image references (``oci/refs/...``): the deleted builds'
references are removed, then every blob they listed that no remaining reference lists is
deleted. An exclusive advisory lock keeps this from racing a builder that is about to reuse a
blob (builders hold the lock shared while they reference and upload).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.artifacts import ArtifactStore
from shared.bus.consumer import HandlerContext, Worker
from shared.events import (
    BuildDeleted,
    EnvironmentDeleted,
    NamespaceDeleted,
    RecordedEvent,
    stream_of_build,
)
from shared.eventstore import Append
from shared.logging import get_logger

from .blobs import Blobs, ImageRef, gc_lock
from .repository import build_image
from .staging import Stagings

log = get_logger(__name__)


class BlobCollector(Worker):
    name = "registry-gc"
    event_types = ("BuildDeleted", "EnvironmentDeleted", "NamespaceDeleted")

    def __init__(self, artifacts: ArtifactStore, stagings: Stagings | None = None) -> None:
        self.blobs = Blobs(artifacts)
        self.stagings = stagings

    async def handle(self, event: RecordedEvent, ctx: HandlerContext) -> Sequence[Append]:
        data = event.payload()
        async with gc_lock(ctx.store.pool, exclusive=True):
            doomed = await self._doomed(data, ctx)
            removed = await self.collect(doomed)
        log.info("images removed", images=len(doomed), blobs_deleted=removed)
        if self.stagings is not None and isinstance(data, EnvironmentDeleted):
            await self.stagings.drop(data.namespace, data.environment)
        elif self.stagings is not None and isinstance(data, NamespaceDeleted):
            await self.stagings.drop(data.namespace)
        return []

    async def _doomed(self, data: object, ctx: HandlerContext) -> list[ImageRef]:
        if isinstance(data, BuildDeleted):
            image = await build_image(ctx.store, data.build_id)
            if not image.namespace:
                return []
            refs = await self.blobs.refs(f"{image.namespace}/{image.environment}/")
            return [r for r in refs if r.build_id == data.build_id]
        if isinstance(data, EnvironmentDeleted):
            refs = await self.blobs.refs(f"{data.namespace}/{data.environment}/")
        elif isinstance(data, NamespaceDeleted):
            refs = await self.blobs.refs(f"{data.namespace}/")
        else:
            return []
        return [r for r in refs if await self._submitted_before(r, ctx)]

    @staticmethod
    async def _submitted_before(ref: ImageRef, ctx: HandlerContext) -> bool:
        """Only builds from before the deletion go: a re-created environment keeps its new ones."""
        events = await ctx.store.read_stream(stream_of_build(ref.build_id))
        return not events or events[0].global_position < ctx.event.global_position

    async def collect(self, doomed: list[ImageRef]) -> int:
        """Delete the references, then the blobs only they used; returns blobs deleted."""
        if not doomed:
            return 0
        for ref in doomed:
            await self.blobs.delete_ref(ref)
        live: set[str] = set()
        for ref in await self.blobs.refs():
            live.update(ref.blobs)
        candidates = {digest for ref in doomed for digest in ref.blobs} - live
        for digest in sorted(candidates):
            await self.blobs.delete(digest)
        return len(candidates)
