"""Solve and install from a served test channel with rattler, as the services do.

Tests and benchmarks share these so that "the tools run directly" means the same calls
everywhere: one channel URL, linux-64 + noarch, an explicit cache directory (rattler needs one)
with `repodata/` and `pkgs/` below it, and the pause that keeps rattler's threads from crashing
the interpreter at exit (toolchain.md).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import rattler
from rattler import Channel, Gateway, MatchSpec, RepoDataRecord


async def solve(
    url: str, specs: Sequence[str], cache: Path, timeout_s: float = 60
) -> list[RepoDataRecord]:
    """Solve `specs` against one channel URL for linux-64 (repodata cached in `cache`)."""
    try:
        return await rattler.solve(
            sources=[Channel(url)],
            specs=[MatchSpec(s) for s in specs],
            gateway=Gateway(cache_dir=cache / "repodata"),
            platforms=["linux-64", "noarch"],
            timeout=timedelta(seconds=timeout_s),
        )
    finally:
        await asyncio.sleep(0.05)


async def install(records: list[RepoDataRecord], prefix: Path, cache: Path) -> None:
    """Install solved records into `prefix` with rattler (packages cached in `cache/pkgs`)."""
    try:
        await rattler.install(records, prefix, cache_dir=cache / "pkgs", show_progress=False)
    finally:
        await asyncio.sleep(0.05)
