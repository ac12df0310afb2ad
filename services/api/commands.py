"""Writes: append events, then wait until the read model has them (read-your-writes).

Routes validate everything first and only then call these, so a rejected request writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from shared.events import EventData, RecordedEvent, new_event
from shared.eventstore import NO_STREAM, Append, ConcurrencyError
from shared.projections.wait import wait_for_projection

from .envelopes import APIError
from .state import ApiState


async def wait_for(state: ApiState, recorded: Sequence[RecordedEvent]) -> None:
    """Block until the projector applied ``recorded``; a stalled projector is a 503, not a lie."""
    if recorded:
        await wait_for_position(state, max(e.global_position for e in recorded))


async def wait_for_position(state: ApiState, position: int) -> None:
    """``wait_for`` when the caller knows the position (a submission returns it)."""
    if not await wait_for_projection(state.store, position, timeout=15.0):
        raise APIError(503, "the read model is behind; the change was recorded")


async def emit(
    state: ApiState,
    stream: str,
    *payloads: EventData,
    actor: str,
    expected_version: int | None = None,
    conflict: str = "concurrent update, retry",
    wait: bool = True,
) -> list[RecordedEvent]:
    """Append ``payloads`` to one stream as ``actor``; 409 ``conflict`` on a version clash."""
    events = [new_event(p, actor=actor, correlation_id=stream) for p in payloads]
    try:
        recorded = await state.store.append(stream, events, expected_version)
    except ConcurrencyError as exc:
        raise APIError(409, conflict) from exc
    if wait:
        await wait_for(state, recorded)
    return recorded


Decision = Callable[[list[RecordedEvent]], Sequence[EventData]]
"""Pure: a stream's history → the events to append (none: nothing to do), or an APIError."""

DECIDE_ATTEMPTS = 5


async def decide(
    state: ApiState,
    stream: str,
    decision: Decision,
    *,
    actor: str,
    conflict: str = "concurrent update, retry",
) -> list[RecordedEvent]:
    """Read the stream, decide, append expecting the version read; on a clash read again and
    decide again (the request may now be refused, e.g. a cancel after the build completed).
    409 only when the stream keeps moving under every attempt."""
    for _ in range(DECIDE_ATTEMPTS):
        history = await state.store.read_stream(stream)
        payloads = decision(history)
        if not payloads:
            return []
        version = history[-1].version if history else NO_STREAM
        events = [new_event(p, actor=actor, correlation_id=stream) for p in payloads]
        try:
            recorded = await state.store.append(stream, events, version)
        except ConcurrencyError:
            continue
        await wait_for(state, recorded)
        return recorded
    raise APIError(409, conflict)


async def emit_many(state: ApiState, appends: Sequence[Append]) -> list[RecordedEvent]:
    recorded = await state.store.append_many(appends) or []
    await wait_for(state, recorded)
    return recorded
