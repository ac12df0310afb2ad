"""What an event that can never be published means for its build (pure; the relay acts on it).

The relay parks such an event (NATS refuses it, e.g. over the server's max payload) and goes
on with the rest. A worker waiting for it would wait forever, so the build it belongs to gets
the failure that worker would have recorded; events no worker waits for are only parked.
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.events import BuildFailed, EventData, ImageFailed, RecordedEvent

WORK_OF = {"SpecSubmitted": "solve", "Solved": "pack", "Packed": "image"}
"""Event types a worker starts from, and the phase that then cannot happen."""

_BUILD_OVER = frozenset({"BuildFailed", "BuildCanceled", "BuildDeleted"})
_IMAGE_OVER = frozenset({"ImagePushed", "ImageFailed"})


def failure_for(event: RecordedEvent, history: Sequence[str], reason: str) -> EventData | None:
    """The failure to append to ``event``'s build, given the types already in its stream."""
    phase = WORK_OF.get(event.type)
    build_id = event.data.get("build_id")
    if phase is None or not isinstance(build_id, int) or _BUILD_OVER.intersection(history):
        return None
    if phase == "image":
        if _IMAGE_OVER.intersection(history):
            return None
        return ImageFailed(build_id=build_id, reason=reason)
    return BuildFailed(build_id=build_id, phase=phase, reason=reason)


def too_large_reason(event: RecordedEvent, size: int, limit: int) -> str:
    return (
        f"event {event.type} at position {event.global_position} is {size} bytes, over the "
        f"message bus limit of {limit} bytes: it could not be delivered, so it was parked"
    )
