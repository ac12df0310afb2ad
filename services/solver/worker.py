"""SolverWorker: ``SpecSubmitted`` → artifacts, BuildStarted + Solved (or BuildFailed).

User errors (unsatisfiable spec, unknown channel, timeout) become ``BuildFailed`` at once, with
the solver's explanation, because retrying cannot help. Infrastructure errors raise, so the
consumer framework retries and, after the last attempt, records ``exhausted()``'s failure.
BuildStarted goes into the same tracked append as the outcome, so it exists exactly once.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence

import asyncpg
import structlog

from shared.artifacts import ArtifactStore
from shared.buildlog import BuildLog
from shared.bus.consumer import HandlerContext, Worker
from shared.events import (
    BuildFailed,
    BuildStarted,
    EventData,
    RecordedEvent,
    Solved,
    SpecSubmitted,
    new_event,
)
from shared.eventstore import Append
from shared.spec import render_pinned_yaml

from .lockfile import render_lockfile, result_from_lockfile, submitted_lockfile_text
from .resolve import Resolver
from .types import SolveFailed, SolveRequest, SolveResult

PHASE = "solve"


def lockfile_key(build_id: int) -> str:
    return f"builds/{build_id}/conda-lock.yml"


def yaml_key(build_id: int) -> str:
    return f"builds/{build_id}/environment.yaml"


def logs_key(build_id: int) -> str:
    return f"builds/{build_id}/logs.txt"


def pinned_yaml(name: str, result: SolveResult) -> str:
    packages = result.for_platform(result.primary_platform())
    conda = [(p.name, p.version, p.build) for p in packages if p.manager == "conda"]
    pip = [(p.name, p.version) for p in packages if p.manager == "pip"]
    return render_pinned_yaml(name, result.channels, conda, pip)


class SolverWorker(Worker):
    name = "solver"
    event_types = ("SpecSubmitted",)

    def __init__(
        self,
        resolver: Resolver,
        artifacts: ArtifactStore,
        pool: asyncpg.Pool,
        commit_delay_s: float = 0.0,
    ) -> None:
        self.resolver = resolver
        self.artifacts = artifacts
        self.pool = pool
        self.commit_delay_s = commit_delay_s
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"

    def _append(self, event: RecordedEvent, build_id: int, *outcome: EventData) -> list[Append]:
        started = BuildStarted(build_id=build_id, phase=PHASE, worker=self.worker_id)
        events = [new_event(e, causation=event) for e in (started, *outcome)]
        return [Append(f"build-{build_id}", events)]

    async def handle(self, event: RecordedEvent, ctx: HandlerContext) -> Sequence[Append]:
        spec = event.payload()
        assert isinstance(spec, SpecSubmitted)
        build_id = spec.build_id
        blog = BuildLog(self.pool, build_id)
        with structlog.contextvars.bound_contextvars(build_id=build_id, phase=PHASE):
            await blog.write(PHASE, f"solving build {build_id} (attempt {ctx.delivery})")
            try:
                result, cache_hit = await self._solve(spec, blog)
            except SolveFailed as exc:
                await blog.write(PHASE, "solve failed:", exc.reason)
                logs = await self._save_logs(blog)
                failed = BuildFailed(
                    build_id=build_id, phase=PHASE, reason=exc.reason, logs_key=logs
                )
                return self._append(event, build_id, failed)
            lock_text = (
                submitted_lockfile_text(spec.lockfile or {})
                if spec.is_lockfile
                else render_lockfile(result)
            )
            await self.artifacts.put_bytes(
                lockfile_key(build_id), lock_text.encode(), content_type="application/json"
            )
            await self.artifacts.put_bytes(
                yaml_key(build_id), pinned_yaml(spec.environment, result).encode()
            )
            primary = result.for_platform(result.primary_platform())
            await blog.write(
                PHASE,
                f"pinned {len(primary)} packages for {result.primary_platform()}:",
                *(f"  {p.manager} {p.name} {p.version} {p.build}".rstrip() for p in primary),
            )
            if self.commit_delay_s:
                await asyncio.sleep(self.commit_delay_s)  # test knob: a window to kill us in
            solved = Solved(
                build_id=build_id,
                lockfile_key=lockfile_key(build_id),
                yaml_key=yaml_key(build_id),
                packages=[p.ref() for p in primary],
                cache_hit=cache_hit,
            )
            return self._append(event, build_id, solved)

    async def _solve(self, spec: SpecSubmitted, blog: BuildLog) -> tuple[SolveResult, bool]:
        if spec.is_lockfile:
            await blog.write(PHASE, "lockfile submitted: using it as is, no solve")
            try:
                return result_from_lockfile(spec.lockfile or {}), False
            except Exception as exc:
                raise SolveFailed(f"invalid lockfile: {exc}") from exc
        request = SolveRequest(
            channels=spec.channels,
            conda=spec.conda_dependencies,
            pip=spec.pip_dependencies,
            platforms=spec.platforms,
        )
        await blog.write(
            PHASE,
            "channels: " + ", ".join(request.channels),
            "platforms: " + ", ".join(request.targets()),
            "conda dependencies: " + ", ".join(request.conda),
            *(["pip dependencies: " + ", ".join(request.pip)] if request.pip else []),
        )
        resolution = await self.resolver.resolve(request)
        if resolution.cache_hit:
            await blog.write(PHASE, f"solve cache hit ({resolution.result.content_hash[:12]})")
        else:
            await blog.write(
                PHASE, f"solve cache miss: solved with rattler{' and uv' * bool(request.pip)}"
            )
        return resolution.result, resolution.cache_hit

    async def _save_logs(self, blog: BuildLog) -> str | None:
        """The solve log as the LOGS artifact (the build ends here); best effort."""
        try:
            await self.artifacts.put_bytes(logs_key(blog.build_id), (await blog.text()).encode())
        except Exception:
            return None
        return logs_key(blog.build_id)

    def exhausted(self, event: RecordedEvent, error: str) -> Sequence[Append]:
        build_id = int(event.data["build_id"])
        failed = BuildFailed(build_id=build_id, phase=PHASE, reason=error)
        return [Append(f"build-{build_id}", [new_event(failed, causation=event)])]
