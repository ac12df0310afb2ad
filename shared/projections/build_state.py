"""One build as its own stream says, by the read model's own fold.

Commands decide on this (cancel, delete, make current) rather than on the read model: the
stream is current to the event just read, and the append that follows expects that version,
so a decision never rests on a state that changed meanwhile. It is the same fold the
projector runs, applied to one stream, so the two can never disagree about a status.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.events import RecordedEvent

from .model import TERMINAL, Build, ReadModel

__all__ = ["TERMINAL", "build_from_stream"]


def build_from_stream(history: Iterable[RecordedEvent]) -> Build | None:
    """The build folded from its stream's events; None for a stream without ``SpecSubmitted``."""
    model = ReadModel()
    build_id: int | None = None
    for event in history:
        model.apply(event)
        if event.type == "SpecSubmitted":
            build_id = int(event.data["build_id"])
    return model.builds.get(build_id) if build_id is not None else None
