"""SolverWorker: ``SpecSubmitted`` → BuildStarted, then artifacts and Solved (or BuildFailed).

``BuildStarted`` is appended the moment a solver takes the build (once: a redelivery finds it),
so clients see the build BUILDING, and can cancel it, while it solves. A cancel stops the solve
and nothing more is appended. User errors (a build path over 255 characters, an unsatisfiable
spec, an unknown channel, a timeout) become ``BuildFailed`` at once, with the explanation,
because retrying cannot help. Infrastructure errors raise, so the consumer framework retries
and, after the last attempt, records ``exhausted()``'s failure.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence
from pathlib import Path

import asyncpg
import structlog

from shared.artifacts import ArtifactStore
from shared.artifacts.keys import build_prefix
from shared.build_path import BUILD_PATH_TOO_LONG, build_path, is_too_long
from shared.buildlog import BuildLog, logs_key
from shared.bus.consumer import HandlerContext, Worker
from shared.cancellation import build_was_canceled, canceled_in, wait_until_canceled
from shared.events import (
    BuildFailed,
    BuildStarted,
    EventData,
    RecordedEvent,
    Solved,
    SpecSubmitted,
    new_event,
    stream_of_build,
)
from shared.eventstore import NO_STREAM, Append, ConcurrencyError, EventStore
from shared.logging import get_logger
from shared.settings import get_settings
from shared.spec import render_pinned_yaml

from .lockfile import (
    lockfile_media_type,
    render_lockfile,
    result_from_lockfile,
    submitted_lockfile_text,
)
from .resolve import Resolver
from .types import SolveFailed, SolveResult, request_of

PHASE = "solve"
CANCELED = "solve stopped: the build was canceled"
log = get_logger(__name__)


def lockfile_key(build_id: int) -> str:
    return build_prefix(build_id) + "conda-lock.yml"


def yaml_key(build_id: int) -> str:
    return build_prefix(build_id) + "environment.yaml"


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
        *,
        store_root: Path | None = None,
    ) -> None:
        self.resolver = resolver
        self.artifacts = artifacts
        self.pool = pool
        self.commit_delay_s = commit_delay_s
        self.store_root = store_root or get_settings().store_root
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"

    async def handle(self, event: RecordedEvent, ctx: HandlerContext) -> Sequence[Append]:
        spec = event.payload()
        assert isinstance(spec, SpecSubmitted)
        build_id = spec.build_id
        blog = BuildLog(self.pool, build_id)
        with structlog.contextvars.bound_contextvars(build_id=build_id, phase=PHASE):
            if not await self._start(ctx.store, event, build_id):
                log.info("build ended (canceled or failed) before solving; skipping")
                return []
            await blog.write(
                PHASE, f"solving build {build_id} (attempt {ctx.attempt}) on {self.worker_id}"
            )
            solving = asyncio.create_task(self._outcome(spec, blog))
            canceled = asyncio.create_task(wait_until_canceled(ctx.store, build_id))
            try:
                await asyncio.wait({solving, canceled}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (solving, canceled):
                    task.cancel()
                await asyncio.gather(solving, canceled, return_exceptions=True)
            stopped = canceled.done() and not canceled.cancelled()
            if stopped or await build_was_canceled(ctx.store, build_id):
                log.info("build canceled while solving; nothing appended")
                await blog.write(PHASE, CANCELED)
                return []
            outcome = solving.result()
        return [Append(stream_of_build(build_id), [new_event(outcome, causation=event)])]

    async def _start(self, store: EventStore, event: RecordedEvent, build_id: int) -> bool:
        """Append ``BuildStarted`` unless the stream has it; False if the build is canceled or
        failed already (a submission refused with its reason, see ``submit_rejected``).

        The append expects the version just read, so a cancel that lands in between is seen
        on the next read instead of being followed by a start.
        """
        stream = stream_of_build(build_id)
        while True:
            history = await store.read_stream(stream)
            if canceled_in(history) or any(e.type == "BuildFailed" for e in history):
                return False
            if any(e.type == "BuildStarted" for e in history):
                return True
            started = BuildStarted(build_id=build_id, phase=PHASE, worker=self.worker_id)
            try:
                await store.append(
                    stream,
                    [new_event(started, causation=event)],
                    history[-1].version if history else NO_STREAM,
                )
                return True
            except ConcurrencyError:
                continue

    async def _outcome(self, spec: SpecSubmitted, blog: BuildLog) -> EventData:
        """Solve and store the artifacts: ``Solved``, or ``BuildFailed`` for a user error."""
        build_id = spec.build_id
        if is_too_long(build_path(self.store_root, spec.namespace, spec.build_key)):
            return await self._failed(blog, build_id, BUILD_PATH_TOO_LONG)
        try:
            result, cache_hit = await self._solve(spec, blog)
        except SolveFailed as exc:
            return await self._failed(blog, build_id, exc.reason)
        if spec.is_lockfile:
            lock_text = spec.lockfile_text or submitted_lockfile_text(spec.submitted_lockfile())
        else:
            lock_text = render_lockfile(result)
        await self.artifacts.put_bytes(
            lockfile_key(build_id), lock_text.encode(), content_type=lockfile_media_type(lock_text)
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
            await asyncio.sleep(self.commit_delay_s)  # test knob: a window to kill or cancel in
        return Solved(
            build_id=build_id,
            lockfile_key=lockfile_key(build_id),
            yaml_key=yaml_key(build_id),
            packages=[p.ref() for p in primary],
            cache_hit=cache_hit,
        )

    async def _failed(self, blog: BuildLog, build_id: int, reason: str) -> BuildFailed:
        await blog.write(PHASE, "solve failed:", reason)
        logs = await self._save_logs(blog)
        return BuildFailed(build_id=build_id, phase=PHASE, reason=reason, logs_key=logs)

    async def _solve(self, spec: SpecSubmitted, blog: BuildLog) -> tuple[SolveResult, bool]:
        if spec.is_lockfile:
            await blog.write(PHASE, "lockfile submitted: using it as is, no solve")
            try:
                return result_from_lockfile(spec.submitted_lockfile()), False
            except Exception as exc:
                raise SolveFailed(f"invalid lockfile: {exc}") from exc
        request = request_of(spec)
        virtual = [f"{k}={v}" if v else f"{k} (removed)" for k, v in spec.virtual_packages.items()]
        await blog.write(
            PHASE,
            "channels: " + ", ".join(request.channels),
            "platforms: " + ", ".join(request.targets()),
            "conda dependencies: " + ", ".join(request.conda),
            *(["pip dependencies: " + ", ".join(request.pip)] if request.pip else []),
            *(["virtual packages: " + ", ".join(virtual)] if virtual else []),
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
        return [Append(stream_of_build(build_id), [new_event(failed, causation=event)])]
