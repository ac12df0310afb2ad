"""The update check: re-solve an environment's current spec without building, and say which
packages a build would now get newer (``UpdateCheckRequested`` → ``UpdateChecked``).

The solve goes through the same resolver as a build, cache included: while the channels'
repodata is unchanged the answer is the cached solve of the build itself (no update, no
solver call); once a channel has something newer, the fingerprint changes and the check
solves. A rebuild then gets exactly what the check saw.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from shared.build_diff import Pin, diff_packages
from shared.bus.consumer import HandlerContext, Worker
from shared.conda_formats import compare_versions
from shared.events import (
    PackageRef,
    PackageUpdate,
    RecordedEvent,
    Solved,
    SpecSubmitted,
    UpdateChecked,
    UpdateCheckRequested,
    new_event,
    stream_of_build,
    stream_of_environment,
)
from shared.eventstore import Append
from shared.logging import get_logger

from .resolve import Resolver
from .types import SolveFailed, request_of

log = get_logger(__name__)


def _pins(packages: Iterable[PackageRef]) -> list[Pin]:
    return [Pin(p.manager, p.name, p.version, p.build, p.channel) for p in packages]


def updates_between(
    built: Iterable[PackageRef], now: Iterable[PackageRef]
) -> tuple[list[PackageUpdate], int]:
    """(packages with a newer version now, packages that differ at all)."""
    changes = diff_packages(_pins(built), _pins(now), compare_versions)
    updates = [
        PackageUpdate(manager=c.manager, name=c.name, version=c.old.version, newer=c.new.version)  # type: ignore[arg-type, union-attr]
        for c in changes
        if c.kind == "upgraded"
    ]
    return updates, len(changes)


class UpdateChecker(Worker):
    name = "update-checker"
    event_types = ("UpdateCheckRequested",)

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver

    async def handle(self, event: RecordedEvent, ctx: HandlerContext) -> Sequence[Append]:
        asked = event.payload()
        assert isinstance(asked, UpdateCheckRequested)
        history = [
            e.payload() for e in await ctx.store.read_stream(stream_of_build(asked.build_id))
        ]
        submitted = next((e for e in history if isinstance(e, SpecSubmitted)), None)
        solved = [e for e in history if isinstance(e, Solved)]
        checked = UpdateChecked(
            namespace=asked.namespace, environment=asked.environment, build_id=asked.build_id
        )
        if submitted is None or not solved:
            checked = checked.model_copy(update={"error": "the build has not been solved"})
        elif submitted.is_lockfile:
            checked = checked.model_copy(
                update={"error": "a lockfile build is pinned: there is no spec to solve again"}
            )
        else:
            checked = await self._check(submitted, solved[-1], checked)
        log.info(
            "update checked",
            build_id=asked.build_id,
            updates=len(checked.updates),
            error=checked.error,
        )
        stream = stream_of_environment(asked.namespace, asked.environment)
        return [Append(stream, [new_event(checked, causation=event)])]

    async def _check(
        self, submitted: SpecSubmitted, solved: Solved, checked: UpdateChecked
    ) -> UpdateChecked:
        request = request_of(submitted)
        try:
            resolution = await self.resolver.resolve(request)
        except SolveFailed as exc:
            return checked.model_copy(update={"error": f"the spec no longer solves: {exc}"})
        updates, changed = updates_between(
            solved.packages, (p.ref() for p in resolution.result.packages)
        )
        return checked.model_copy(update={"updates": updates, "changed": changed})
