"""rattler's package cache (``Settings.package_cache_dir``), shared by packers and image builders,
kept under a size cap.

rattler extracts each package once into ``<name>-<version>-<build>/`` (beside a ``.lock``
file) and never deletes any. Every install here holds a shared ``flock`` on
``.conda-store-in-use`` while it links; pruning takes that lock exclusively without waiting,
so it only runs while no install on this disk is linking and no build loses a package under
its feet. Prefixes already built keep their files: they are hard links. Entries are ranked by
when an install last used them (the directory's mtime, touched after each install).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any

from shared import flock

IN_USE = ".conda-store-in-use"


@contextlib.asynccontextmanager
async def installing(cache_dir: Path, records: Iterable[Any] = ()) -> AsyncIterator[None]:
    """Hold the cache against pruning while linking; afterwards mark ``records`` used."""
    async with flock.held(cache_dir / IN_USE, fcntl.LOCK_SH):
        yield
        await asyncio.to_thread(mark_used, cache_dir, records)


def entry_name(record: Any) -> str:
    """The cache directory rattler extracts a ``RepoDataRecord`` into."""
    return f"{record.name.normalized}-{record.version}-{record.build}"


def mark_used(cache_dir: Path, records: Iterable[Any]) -> None:
    for record in records:
        with contextlib.suppress(OSError):
            os.utime(cache_dir / entry_name(record))


_SIZES: dict[tuple[str, int, int], int] = {}
"""Sizes of extracted entries measured before, by (path, inode, mtime of the directory's
``info/``): rattler never changes an entry once extracted, and pruning only runs while no
install (hence no extraction) holds the cache, so each entry is walked once per process, not at
every build (a data-science cache holds hundreds of thousands of files)."""


def _entry_size(entry: Path) -> int:
    info = entry / "info"
    try:
        st_dir, st_info = entry.stat(), info.stat()
    except FileNotFoundError:
        return _size(entry)
    key = (str(entry), st_dir.st_ino, st_info.st_mtime_ns)
    if key not in _SIZES:
        _SIZES[key] = _size(entry)
    return _SIZES[key]


def _size(directory: Path) -> int:
    total = 0
    for root, _, files in os.walk(directory):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_size
    return total


def prune(cache_dir: Path, max_bytes: int) -> int:
    """Delete least recently used entries until the cache fits in 90% of ``max_bytes``;
    returns the bytes freed, 0 without touching anything while an install is linking."""
    if not cache_dir.is_dir():
        return 0
    try:
        fd = flock.take(cache_dir / IN_USE, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0
    try:
        entries = []
        for entry in cache_dir.iterdir():
            if entry.name.startswith(".") or not entry.is_dir() or entry.is_symlink():
                continue
            entries.append((entry.stat().st_mtime, _entry_size(entry), entry))
        total = sum(size for _, size, _ in entries)
        if total <= max_bytes:
            return 0
        freed = 0
        for _, size, entry in sorted(entries, key=lambda e: (e[0], e[2].name)):
            if total - freed <= max_bytes * 0.9:
                break
            # the lock file first: without it rattler revalidates instead of trusting the dir
            with contextlib.suppress(FileNotFoundError):
                entry.with_name(f"{entry.name}.lock").unlink()
            shutil.rmtree(entry, ignore_errors=True)
            for key in [k for k in _SIZES if k[0] == str(entry)]:
                del _SIZES[key]
            freed += size
        return freed
    finally:
        os.close(fd)
