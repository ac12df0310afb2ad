"""The scheduled update check: every environment's current build is checked once per
``update_check_interval_s`` (default daily), by one gateway at a time (the ``update-check``
leadership). A check is a request event the solver answers; nothing is built."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime, timedelta

from shared.events import (
    RecordedEvent,
    UpdateCheckRequested,
    new_event,
    stream_of_environment,
    utcnow,
)
from shared.eventstore import EventStore
from shared.eventstore.leader import Lease, run_as_leader
from shared.logging import get_logger

from .queries.updates import CheckState, check_states

log = get_logger(__name__)
ROLE = "update-check"
ACTOR = "update-check"
SCAN_EVERY_S = 300.0
"""How often the leader looks for environments due (the interval itself is far longer)."""


def due(states: Sequence[CheckState], now: datetime, interval: timedelta) -> list[CheckState]:
    """Environments whose current build was never checked, or not within ``interval`` (a
    request counts, so a check the solver has not answered yet is not asked for again)."""
    found = []
    for state in states:
        last = max((t for t in (state.requested_at, state.checked_at) if t), default=None)
        if state.checked_build_id != state.build_id or last is None or now - last >= interval:
            found.append(state)
    return found


async def request_check(
    store: EventStore, state: CheckState, reason: str, actor: str
) -> list[RecordedEvent]:
    asked = UpdateCheckRequested(
        namespace=state.namespace,
        environment=state.environment,
        build_id=state.build_id,
        reason=reason,  # type: ignore[arg-type]
    )
    stream = stream_of_environment(state.namespace, state.environment)
    return await store.append(stream, [new_event(asked, actor=actor, correlation_id=stream)])


class UpdateSchedule:
    def __init__(self, store: EventStore, interval_s: float) -> None:
        self.store = store
        self.interval = timedelta(seconds=interval_s)

    async def run_once(self) -> int:
        """Ask for every check that is due; returns how many."""
        states = due(await check_states(self.store.pool), utcnow(), self.interval)
        for state in states:
            await request_check(self.store, state, "schedule", ACTOR)
        if states:
            log.info("update checks requested", environments=len(states))
        return len(states)

    async def run(self, lease_s: float, scan_every_s: float = SCAN_EVERY_S) -> None:
        async def lead(_lease: Lease) -> None:
            pause = min(scan_every_s, self.interval.total_seconds())
            while True:
                await asyncio.sleep(pause)  # not at start-up: a restart loop asks nothing
                try:
                    await self.run_once()
                except Exception:  # the read model may be away; the next scan tries again
                    log.warning("update check scan failed", exc_info=True)

        await run_as_leader(self.store, ROLE, lead, lease_s)
