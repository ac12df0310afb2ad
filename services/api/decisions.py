"""What a command appends, decided from the stream it appends to (pure: history in, events
out, or an ``APIError`` naming why not). ``commands.decide`` reads the stream, runs one of
these and appends expecting the version it read, so two racing requests are decided one after
the other, each on the other's outcome."""

from __future__ import annotations

from collections.abc import Sequence

from shared.events import BuildCanceled, BuildDeleted, EventData, RecordedEvent
from shared.projections.build_state import TERMINAL, build_from_stream
from shared.projections.model import Build

from .envelopes import APIError

FINISHED = frozenset({"COMPLETED", "FAILED"})
"""Builds conda-store lets one delete (not a running one, nor a canceled one)."""


def _build(build_id: int, history: Sequence[RecordedEvent]) -> Build:
    build = build_from_stream(history)
    if build is None:
        raise APIError(404, "build id does not exist")
    return build


def cancel_build(build_id: int, history: list[RecordedEvent]) -> list[EventData]:
    build = _build(build_id, history)
    if build.status in TERMINAL:
        raise APIError(400, f"cannot cancel build {build_id} since it is {build.status}")
    return [BuildCanceled(build_id=build_id)]


def delete_build(
    build_id: int, kept: Sequence[str], history: list[RecordedEvent]
) -> list[EventData]:
    """Nothing to append for a build already deleted (the request still succeeds)."""
    build = _build(build_id, history)
    if build.deleted_on is not None:
        return []
    if build.status not in FINISHED:
        raise APIError(400, "cannot delete build since not finished building")
    return [BuildDeleted(build_id=build_id, kept_artifacts=list(kept))]  # type: ignore[arg-type]


def check_can_become_current(
    build_id: int, environment: tuple[str, str], history: list[RecordedEvent]
) -> None:
    """``PUT /environment/…`` with ``build_id``: a completed, live build of that environment."""
    build = build_from_stream(history)
    if build is None:
        raise APIError(400, f"build id={build_id} does not exist")
    if build.status != "COMPLETED" or build.deleted_on is not None:
        raise APIError(400, "cannot update environment to build id since not completed")
    if (build.namespace, build.environment) != environment:
        raise APIError(
            400,
            "cannot update environment to build id since specification does not match "
            "environment name",
        )
