"""Whether a build was canceled, read from its own stream.

Workers poll this while they work on a build (the packer also has a NATS listener that is
faster): a ``BuildCanceled`` in the stream is the only truth about a cancel.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from shared.events import RecordedEvent, stream_of_build
from shared.eventstore import EventStore

CANCEL_POLL_S = 1.0


def canceled_in(history: Sequence[RecordedEvent]) -> bool:
    return any(e.type == "BuildCanceled" for e in history)


async def build_was_canceled(store: EventStore, build_id: int) -> bool:
    return canceled_in(await store.read_stream(stream_of_build(build_id)))


async def wait_until_canceled(
    store: EventStore, build_id: int, interval: float = CANCEL_POLL_S
) -> None:
    """Return once the build is canceled; a read that fails (store away) is tried again."""
    while True:
        await asyncio.sleep(interval)
        try:
            if await build_was_canceled(store, build_id):
                return
        except Exception:
            continue
