"""PackerWorker: ``Solved`` → the build's prefix in the store → archive and SBOM → ``Packed``.

Status BUILDING already comes from the solver's ``BuildStarted``; the packer appends only the
outcome. User errors (a package the channel lacks, pip refusing a pin, a build path over 255
characters, a store volume below ``storage_threshold``) become ``BuildFailed`` at once because
a retry cannot help; infrastructure errors (the network, the disk, a file that vanished)
raise, so the consumer retries and, after the last attempt, ``exhausted`` records the failure.

Each build is installed once, where users find it: ``<store>/<namespace>/<build key>``, hard
linked from the shared package cache (``services.packer.store``). The archive is packed from
that prefix, which stays as the ``DIRECTORY`` artifact; the prefix is marked complete last, and
the store linker (``services.packer.linker``) points ``envs/<name>`` at it once ``Packed`` is
recorded. Only the attempt that holds the build's lease touches the prefix: it removes what a
dead attempt left before installing, and removes the prefix itself if the build fails. The
per-attempt work directory (``builds/<id>.<attempt>.work``: lockfile, archive) is scratch.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path

import asyncpg
import structlog

from shared.artifacts import ArtifactStore
from shared.artifacts.keys import build_prefix
from shared.bus.consumer import HandlerContext, Worker
from shared.cancellation import build_was_canceled, canceled_in, wait_until_canceled
from shared.events import (
    BuildFailed,
    EventData,
    Packed,
    RecordedEvent,
    Solved,
    SpecSubmitted,
    new_event,
    stream_of_build,
)
from shared.eventstore import Append, EventStore
from shared.lockfile import LockContents, UserError, content_key, read_lockfile
from shared.logging import get_logger
from shared.package_cache import prune as prune_package_cache
from shared.pip_install import install_pip
from shared.sbom import SbomSubject
from shared.settings import Settings

from .archive_cache import FORMAT as ARCHIVE_FORMAT
from .archive_cache import ArchiveCache
from .cancel import CancelRegistry
from .install import (
    check_prefix_length,
    install_conda,
    remove_earlier_attempts,
    remove_tree,
    work_dir,
)
from .logs import InstallReporter, PackerLog, describe_error
from .pack import pack_prefix, pack_threads, segment_cache_dir
from .sbom import upload_sbom
from .segments import SegmentCache
from .store import (
    Ownership,
    free_bytes,
    mark_complete,
    own_and_measure,
    prefix_of_build,
    remove_prefix,
)

log = get_logger(__name__)


def archive_key(build_id: int) -> str:
    return build_prefix(build_id) + "archive.tar.gz"


@dataclass
class _Progress:
    """Where a build got to, so a failure names its phase."""

    phase: str = "download"
    packed: bool = False


@dataclass(frozen=True)
class _Target:
    """Where one build goes and how, from its ``SpecSubmitted``."""

    submitted: SpecSubmitted
    prefix: Path
    workdir: Path
    solved_at: datetime
    """When ``Solved`` was recorded: the SBOM's time, the same on every attempt."""


def storage_below_threshold(free: int, threshold: int) -> str | None:
    """The reason a build may not start on a store volume with ``free`` bytes, or None."""
    if threshold <= 0 or free >= threshold:
        return None
    return (
        f"not enough free storage in the store directory: {free} bytes free,"
        f" storage_threshold requires {threshold} bytes"
    )


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


class PackerWorker(Worker):
    name = "packer"
    event_types = ("Solved",)

    def __init__(
        self,
        settings: Settings,
        artifacts: ArtifactStore,
        pool: asyncpg.Pool,
        *,
        test_delay_s: float | None = None,
    ) -> None:
        self.settings = settings
        self.artifacts = artifacts
        self.pool = pool
        self.cancels = CancelRegistry()
        self.test_delay_s = settings.packer_test_delay_s if test_delay_s is None else test_delay_s
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self._saved_logs: dict[int, str] = {}
        self.archives = ArchiveCache(settings.cache_root / "archives")
        self.segments = SegmentCache(segment_cache_dir(settings.cache_root))

    # --- consumer entry points -----------------------------------------------------------

    async def handle(self, event: RecordedEvent, ctx: HandlerContext) -> Sequence[Append]:
        solved = event.payload()
        assert isinstance(solved, Solved)
        build_id = solved.build_id
        plog = self.build_log(build_id)
        outcome: EventData | None = None
        with (
            structlog.contextvars.bound_contextvars(build_id=build_id),
            self.cancels.track(build_id),
        ):
            watcher: asyncio.Task[None] | None = None
            try:
                if await build_was_canceled(ctx.store, build_id):
                    log.info("build was canceled before packing; skipping")
                    await self._remove_earlier_prefix(solved, ctx)
                    return []
                watcher = asyncio.create_task(self._watch_for_cancel(ctx.store, build_id))
                outcome = await self._build(solved, plog, ctx)
                return await self._outcome(event, outcome, plog, ctx)
            except asyncio.CancelledError:
                if not self.cancels.was_cancelled(build_id):
                    raise  # shutting down: the message is redelivered to another packer
                task = asyncio.current_task()
                if task is not None:
                    task.uncancel()
                await self._undo(outcome)
                await self._on_canceled(plog, build_id)
                return []
            finally:
                if watcher is not None:
                    watcher.cancel()

    async def _remove_earlier_prefix(self, solved: Solved, ctx: HandlerContext) -> None:
        """An earlier attempt may have packed the build before its cancel failed that
        attempt's commit: its complete prefix goes (nothing at all, usually)."""
        with contextlib.suppress(LookupError):
            target = await self._target(solved, ctx)
            await asyncio.to_thread(remove_prefix, target.prefix)

    async def _undo(self, outcome: EventData | None) -> None:
        """Remove what a build canceled after it was packed made: its complete prefix."""
        if isinstance(outcome, Packed) and outcome.directory:
            await asyncio.to_thread(remove_prefix, Path(outcome.directory))

    async def _outcome(
        self, event: RecordedEvent, outcome: EventData, plog: PackerLog, ctx: HandlerContext
    ) -> Sequence[Append]:
        """The build's result, appended only on the stream as it was read here: a cancel that
        landed at the end of the build (after the last cancel watch) undoes a ``Packed``, and
        one that lands after this read fails the commit, which is then handled again."""
        stream = stream_of_build(outcome.build_id)  # type: ignore[attr-defined]
        history = await ctx.store.read_stream(stream)
        if canceled_in(history):
            await self._undo(outcome)
            await self._on_canceled(plog, outcome.build_id)  # type: ignore[attr-defined]
            return []
        version = history[-1].version if history else 0
        return [Append(stream, [new_event(outcome, causation=event)], expected_version=version)]

    def exhausted(self, event: RecordedEvent, error: str) -> Sequence[Append]:
        build_id = int(event.data["build_id"])
        failed = BuildFailed(
            build_id=build_id,
            phase="pack",
            reason=error,
            logs_key=self._saved_logs.pop(build_id, None),
        )
        return [Append(stream_of_build(build_id), [new_event(failed, causation=event)])]

    # --- one build -----------------------------------------------------------------------

    def build_log(self, build_id: int) -> PackerLog:
        """The build's live log, in Postgres (a seam: unit tests keep the lines in memory)."""
        return PackerLog(self.pool, self.artifacts, build_id)

    async def _watch_for_cancel(self, store: EventStore, build_id: int) -> None:
        """Fallback for the NATS listener (absent, or reconnecting): poll the build's stream.

        The listener cancels within milliseconds; this catches a cancel within a poll interval
        even when the listener missed it, so a cancelled build never packs to the end.
        """
        await wait_until_canceled(store, build_id)
        self.cancels.cancel(build_id)

    async def _target(self, solved: Solved, ctx: HandlerContext) -> _Target:
        first = (await ctx.store.read_stream(stream_of_build(solved.build_id), 1))[:1]
        submitted = first[0].payload() if first else None
        if not isinstance(submitted, SpecSubmitted):
            raise LookupError(f"build {solved.build_id} has no SpecSubmitted event")
        prefix = prefix_of_build(self.settings.store_root, submitted)
        workdir = work_dir(self.settings.scratch_root, solved.build_id, ctx.attempt)
        return _Target(submitted, prefix, workdir, ctx.event.recorded_at)

    async def _build(self, solved: Solved, plog: PackerLog, ctx: HandlerContext) -> EventData:
        build_id = solved.build_id
        target = await self._target(solved, ctx)
        progress = _Progress()
        try:
            await plog.write(
                "download",
                f"packing build {build_id} (attempt {ctx.attempt} of {ctx.max_attempts})"
                f" on {self.worker_id}",
            )
            check_prefix_length(target.prefix)
            self._check_storage(target)
            return await self._run_phases(solved, plog, target, progress)
        except UserError as exc:
            await plog.write(progress.phase, f"build failed: {exc}")
            key = await plog.save_quietly()
            return BuildFailed(
                build_id=build_id, phase=progress.phase, reason=str(exc), logs_key=key
            )
        except Exception as exc:
            cause = describe_error(exc)
            final = ctx.last_attempt
            await _write_quietly(
                plog,
                progress.phase,
                f"build failed: {cause}" if final else f"attempt {ctx.attempt} failed: {cause}",
            )
            key = await plog.save_quietly()
            if key is not None:
                self._saved_logs[build_id] = key
            raise
        finally:
            if not progress.packed:  # failed, cancelled or retried: no half prefix stays
                await asyncio.to_thread(remove_prefix, target.prefix)
            await remove_tree(target.workdir)

    def _check_storage(self, target: _Target) -> None:
        threshold = target.submitted.store_policy.storage_threshold
        reason = storage_below_threshold(free_bytes(self.settings.store_root), threshold)
        if reason is not None:
            raise UserError(reason)

    async def _run_phases(
        self, solved: Solved, plog: PackerLog, target: _Target, progress: _Progress
    ) -> EventData:
        await remove_earlier_attempts(
            self.settings.scratch_root, solved.build_id, keep=target.workdir
        )
        await asyncio.to_thread(remove_prefix, target.prefix)  # a dead attempt's half install
        await remove_tree(target.workdir)
        await asyncio.to_thread(target.workdir.mkdir, parents=True)
        try:
            return await self._phases(solved, plog, target, progress)
        except UserError as exc:
            if not await asyncio.to_thread(target.workdir.is_dir):  # a local fault: retried
                raise FileNotFoundError(f"the build's work directory vanished: {exc}") from exc
            raise

    async def _phases(
        self, solved: Solved, plog: PackerLog, target: _Target, progress: _Progress
    ) -> EventData:
        build_id = solved.build_id
        prefix, workdir, submitted = target.prefix, target.workdir, target.submitted
        started = time.monotonic()
        lock_path = workdir / "conda-lock.yml"
        await self.artifacts.download_file(solved.lockfile_key, lock_path)
        contents = read_lockfile(lock_path)
        cache = self.settings.package_cache_dir
        await plog.write(
            "download",
            f"installing {len(contents.conda)} conda packages for {contents.platform}"
            f" into {prefix}",
            f"shared package cache: {cache}",
        )
        await self._install(contents.conda, prefix, cache, plog, progress)
        if self.test_delay_s:
            await plog.write("link", f"test delay: waiting {self.test_delay_s:g} s")
            await asyncio.sleep(self.test_delay_s)

        progress.phase = "pip"
        if contents.pip:
            await plog.write("pip", f"installing {len(contents.pip)} pip packages with --no-deps:")
            await plog.write("pip", *(f"  {p.name}=={p.version}" for p in contents.pip))
            output = await install_pip(prefix, contents.pip, self.settings.pip_index, workdir)
            await plog.write("pip", *output[-20:])
        else:
            await plog.write("pip", "no pip packages")

        # the SBOM needs only the installed prefix: made beside the ownership walk and the
        # archive rather than after them (a 150-package SBOM takes ~0.3 s)
        sbom_made = asyncio.create_task(self._sbom(solved, target, plog))
        try:
            policy = submitted.store_policy
            owner = Ownership(policy.uid, policy.gid, policy.permissions)
            size = await asyncio.to_thread(own_and_measure, prefix, owner)

            progress.phase = "pack"
            archive: str | None = None
            if policy.make_archive:
                archive = await self._archive(contents, prefix, workdir, size, plog, build_id)
            else:
                await plog.write(
                    "pack", "no archive: the build_artifacts setting has no CONDA_PACK"
                )
            await self._prune_caches()
            progress.phase = "upload"
            sbom = await sbom_made
        finally:
            if not sbom_made.done():
                sbom_made.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await sbom_made

        await asyncio.to_thread(
            mark_complete, prefix, build_id, submitted.namespace, submitted.environment, owner
        )
        progress.packed = True
        await plog.write(
            "upload",
            f"build {build_id} packed in {time.monotonic() - started:.1f} s;"
            f" the environment is at {prefix}",
        )
        saved = await plog.save()
        return Packed(
            build_id=build_id,
            archive_key=archive,
            logs_key=saved,
            size=size,
            namespace=submitted.namespace,
            environment=submitted.environment,
            build_key=submitted.build_key,
            lockfile_key=solved.lockfile_key,
            make_image=submitted.make_image,
            directory=str(prefix),
            sbom_key=sbom,
        )

    async def _sbom(self, solved: Solved, target: _Target, plog: PackerLog) -> str:
        """The build's CycloneDX SBOM, from the solve's packages and the installed prefix."""
        submitted = target.submitted
        subject = SbomSubject(
            submitted.namespace,
            submitted.environment,
            solved.build_id,
            submitted.build_key,
            target.solved_at,
        )
        t0 = time.monotonic()
        key, size = await upload_sbom(self.artifacts, subject, solved.packages, target.prefix)
        await plog.write(
            "upload",
            f"SBOM of {len(solved.packages)} packages (CycloneDX 1.5): {key},"
            f" {size} bytes in {time.monotonic() - t0:.2f} s",
        )
        return key

    async def _archive(
        self,
        contents: LockContents,
        prefix: Path,
        workdir: Path,
        size: int,
        plog: PackerLog,
        build_id: int,
    ) -> str:
        """The build's archive uploaded: an identical package set's archive when one was packed
        before, else conda-pack of the prefix (kept in the archive cache for the next one)."""
        reuse_key = content_key(contents, ARCHIVE_FORMAT)
        key = archive_key(build_id)
        cached = await asyncio.to_thread(self.archives.get, reuse_key)
        if cached is not None:
            await plog.write(
                "pack",
                f"identical package set already packed by build {cached.source_build}:"
                " reusing its archive (no pack)",
            )
            source = cached.path
        else:
            threads = self.settings.packer_pack_threads or pack_threads()
            await plog.write(
                "pack",
                f"prefix size {size} bytes ({_mb(size)}); conda-pack with {threads} threads",
            )
            source = workdir / "archive.tar.gz"
            t0 = time.monotonic()
            stats = await pack_prefix(prefix, source, self.segments.root, threads)
            await plog.write(
                "pack",
                stats.summary(),
                f"archive written: {_mb(source.stat().st_size)} in {time.monotonic() - t0:.1f} s",
            )
            await asyncio.to_thread(self.archives.put, reuse_key, source, size, build_id)
        t0 = time.monotonic()
        await self.artifacts.put_file(key, source, content_type="application/gzip")
        await plog.write("upload", f"uploaded {key} in {time.monotonic() - t0:.1f} s")
        return key

    async def _prune_caches(self) -> None:
        """Keep the package members and rattler's package cache under their caps; they are
        caches, so failures are only logged."""
        cache = self.settings.package_cache_dir
        for name, cap, prune in (
            ("pack segments", self.settings.packer_segment_cache_gb, self.segments.prune),
            (
                "package cache",
                self.settings.packer_pkgs_cache_gb,
                partial(prune_package_cache, cache),
            ),
        ):
            if cap <= 0:
                continue
            try:
                freed = await asyncio.to_thread(prune, int(cap * 1e9))
            except OSError:
                log.warning("cache prune failed", cache=name, exc_info=True)
                continue
            if freed:
                log.info("cache pruned", cache=name, freed_bytes=freed)

    async def _install(
        self,
        records: Sequence[object],
        prefix: Path,
        cache: Path,
        plog: PackerLog,
        progress: _Progress,
    ) -> None:
        """rattler install with its progress streamed into the log as it happens."""
        reporter = InstallReporter(asyncio.get_running_loop())
        pump = asyncio.create_task(reporter.pump(plog))
        t0 = time.monotonic()
        try:
            await install_conda(records, prefix, cache, reporter)  # type: ignore[arg-type]
        finally:
            reporter.close()
            await asyncio.shield(pump)
        progress.phase = "link"
        await plog.write("link", f"installed in {time.monotonic() - t0:.2f} s")

    async def _on_canceled(self, plog: PackerLog, build_id: int) -> None:
        """The prefix is already gone (``_build``'s finally); leave the log's last word."""
        log.info("build canceled while packing")
        await _write_quietly(
            plog, "pack", f"build {build_id} marked as CANCELED: canceled while packing"
        )
        await plog.save_quietly()


async def _write_quietly(plog: PackerLog, phase: str, line: str) -> None:
    try:
        await plog.write(phase, line)
    except Exception:
        log.warning("could not write build log line", line=line)
