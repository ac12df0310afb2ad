"""Installing a build prefix: rattler from one shared package cache (pip pins: shared.pip_install).

Every build links from ``<data_dir>/cache/pkgs``: a package is downloaded and extracted once
for all builds and hard-linked into each prefix. rattler guards each cache entry with its own
file lock (``<entry>.lock``), so concurrent builds in one process or in several packer
processes on the same disk share the cache safely (checked by the six-builds test).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import rattler

from shared.build_path import BUILD_PATH_TOO_LONG as PREFIX_TOO_LONG
from shared.build_path import is_too_long
from shared.lockfile import UserError
from shared.package_cache import installing


def work_dir(scratch_root: Path, build_id: int, attempt: int) -> Path:
    """``<scratch_root>/<id>.<attempt>.work``: the lockfile and archive of one attempt; one
    per attempt, so that two attempts can never share a file (the prefix itself lives in the
    store and is touched only under the build's lease)."""
    return scratch_root / f"{build_id}.{attempt}.work"


def scratch_dirs(scratch_root: Path, build_id: int) -> list[Path]:
    """Every attempt's work directory of ``build_id`` that exists now."""
    return sorted(scratch_root.glob(f"{build_id}.*"))


def check_prefix_length(prefix: Path) -> None:
    if is_too_long(prefix):
        raise UserError(PREFIX_TOO_LONG)


async def remove_tree(path: Path) -> None:
    """Delete a directory (in a thread: a prefix holds thousands of files)."""
    await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)


async def remove_earlier_attempts(scratch_root: Path, build_id: int, keep: Path) -> None:
    """Delete what earlier attempts left (a packer killed mid-build). Only the lease holder
    calls this: every earlier attempt has died or given up, none is still using its files."""
    for path in await asyncio.to_thread(scratch_dirs, scratch_root, build_id):
        if path != keep:
            await remove_tree(path)


_CHANNEL_LACKS_IT = re.compile(r"HTTP status client error \((404|410)\b", re.IGNORECASE)


def is_missing_package(text: str) -> bool:
    """True when rattler's error says the channel answered 404/410 for a package.

    Only the channel's answer counts: a local file error ("No such file or directory", a cache
    entry or a prefix that vanished) is the machine's problem, retried, never the user's.
    """
    return _CHANNEL_LACKS_IT.search(text) is not None


async def install_conda(
    records: Sequence[rattler.RepoDataRecord],
    prefix: Path,
    cache_dir: Path,
    reporter: rattler.InstallerReporter | None = None,
) -> None:
    """Link ``records`` into ``prefix``. A package the channel no longer has is a UserError;
    other failures (network, disk) propagate so the consumer retries.

    If the caller is cancelled, the install is allowed to finish first (rattler keeps
    working after its Python future is cancelled), so that the caller can then delete the
    prefix without racing rattler's writers.
    """
    try:
        async with installing(cache_dir, records):
            task = asyncio.ensure_future(
                rattler.install(
                    list(records),
                    prefix,
                    cache_dir=cache_dir,
                    show_progress=False,
                    reporter=reporter,
                    execute_link_scripts=False,
                )
            )
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                with contextlib.suppress(BaseException):
                    await task
                raise
    except Exception as exc:
        text = str(exc)
        if type(exc).__name__ == "InstallerError" and is_missing_package(text):
            raise UserError(f"a package could not be fetched from its channel:\n{text}") from exc
        raise
