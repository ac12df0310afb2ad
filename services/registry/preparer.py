"""Image preparation: ``Solved`` → the image's layers and recipe, while the packer still packs.

An image needs only the lockfile ``Solved`` names, not the packer's prefix or archive. Making
its layers when the build is solved, beside the packer's install and archive, instead of after
``Packed``, lets the image builder find the recipe of the package set when ``Packed`` comes and
only assemble and reference it: ``ImagePushed`` follows ``Packed`` by a fraction of a second
whatever the size of the environment, and on a machine whose cores the packer leaves idle
(linking and tar writing hold one), the whole build ends sooner.

Preparation is an optimisation and records nothing: a build canceled, failed, deleted or
imaged before it starts is skipped; an error is logged and left to the image builder, which
makes whatever is missing. Both hold the environment's staging in turn (``Stagings``), so the
builder waits for a preparation under way rather than repeating it.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.bus.consumer import HandlerContext, Worker
from shared.events import (
    BuildCanceled,
    BuildDeleted,
    BuildFailed,
    ImagePushed,
    RecordedEvent,
    Solved,
)
from shared.eventstore import Append
from shared.logging import get_logger

from .builder import ImageBuilder, ImageJob

log = get_logger(__name__)

SETTLED = (ImagePushed, BuildCanceled, BuildDeleted, BuildFailed)
"""A build with any of these in its stream needs no preparation any more."""


class ImagePreparer(Worker):
    name = "registry-preparer"
    event_types = ("Solved",)

    def __init__(self, builder: ImageBuilder) -> None:
        self.builder = builder

    async def handle(self, event: RecordedEvent, ctx: HandlerContext) -> Sequence[Append]:
        solved = event.payload()
        assert isinstance(solved, Solved)
        history = [e.payload() for e in await ctx.store.read_stream(event.stream)]
        if any(isinstance(e, SETTLED) for e in history):
            log.info("image preparation not needed (build ended or imaged)")
            return []
        job = ImageJob.of_history(history, solved.build_id)
        if not job.make_image:
            return []
        try:
            await self.builder.prepare(job)
        except Exception as exc:  # the image builder makes what is missing, and reports
            log.warning("image preparation failed; the image build will redo it", error=str(exc))
            return []
        log.info("image prepared")
        return []
