"""The packer's side of live build logs: phase lines, rattler progress, the LOGS artifact.

Lines go to ``BuildLog`` (Postgres) the moment they happen, so the API can stream a build that
is still running. rattler reports progress from its own threads; ``InstallReporter`` hands those
callbacks to the event loop, and one pump task writes them in order, in small batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading

import asyncpg
import rattler

from shared.artifacts import ArtifactStore
from shared.buildlog import BuildLog, logs_key

PHASES = ("download", "link", "pip", "pack", "upload")


class PackerLog:
    """One build's log: ``write`` a phase's lines now, ``save`` the whole text as LOGS."""

    def __init__(self, pool: asyncpg.Pool, artifacts: ArtifactStore, build_id: int) -> None:
        self.build_id = build_id
        self.blog = BuildLog(pool, build_id)
        self.artifacts = artifacts

    async def write(self, phase: str, *lines: str) -> None:
        await self.blog.write(phase, *lines)

    async def save(self) -> str:
        """Upload the log so far as ``builds/<id>/logs.txt``; returns the key."""
        key = logs_key(self.build_id)
        await self.artifacts.put_bytes(
            key, (await self.blog.text()).encode(), content_type="text/plain"
        )
        return key

    async def save_quietly(self) -> str | None:
        """``save`` for failure paths: a failing upload must not hide the original error."""
        try:
            return await self.save()
        except Exception:
            return None


class InstallReporter(rattler.InstallerReporter):
    """rattler progress → ``download``/``link`` log lines (called from rattler's threads)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._queue: asyncio.Queue[tuple[str, str] | None] = asyncio.Queue()
        self._lock = threading.Lock()
        self._names: dict[int, str] = {}
        self._downloads: dict[int, str] = {}
        self._downloaded: set[int] = set()

    def _emit(self, phase: str, line: str) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (phase, line))

    # --- rattler callbacks (any thread) -------------------------------------------------------

    def on_transaction_start(self, total_operations: int) -> None:
        self._emit("download", f"{total_operations} packages to install")

    def on_populate_cache_start(self, operation: int, package_name: str) -> int:
        with self._lock:
            self._names[operation] = package_name
        return operation

    def on_download_start(self, cache_entry: int) -> int:
        with self._lock:
            name = self._names.get(cache_entry, "?")
            self._downloads[cache_entry] = name
        self._emit("download", f"downloading {name}")
        return cache_entry

    def on_download_completed(self, download_idx: int) -> None:
        with self._lock:
            name = self._downloads.get(download_idx, "?")
            self._downloaded.add(download_idx)
        self._emit("download", f"downloaded and extracted {name}")

    def on_populate_cache_complete(self, cache_entry: int) -> None:
        with self._lock:
            name = self._names.get(cache_entry, "?")
            hit = cache_entry not in self._downloaded
        if hit:
            self._emit("download", f"{name} already in the package cache")

    def on_link_start(self, operation: int, package_name: str) -> int:
        self._emit("link", f"linking {package_name}")
        return operation

    def on_transaction_complete(self) -> None:
        self._emit("link", "all packages linked")

    # --- the loop side ------------------------------------------------------------------------

    async def pump(self, log: PackerLog) -> None:
        """Write queued lines until ``close``; batches keep Postgres round trips low."""
        while True:
            item = await self._queue.get()
            batch: list[tuple[str, str]] = []
            done = item is None
            if item is not None:
                batch.append(item)
            while not done and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    done = True
                else:
                    batch.append(nxt)
            for phase, lines in _runs(batch):
                with contextlib.suppress(Exception):  # progress lines are best effort
                    await log.write(phase, *lines)
            if done:
                return

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._queue.put_nowait, None)


def describe_error(exc: BaseException) -> str:
    """One readable cause for the log and the event, without a Python traceback."""
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


def _runs(batch: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """Consecutive lines of one phase grouped, order kept."""
    runs: list[tuple[str, list[str]]] = []
    for phase, line in batch:
        if runs and runs[-1][0] == phase:
            runs[-1][1].append(line)
        else:
            runs.append((phase, [line]))
    return runs
