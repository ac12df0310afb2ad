"""Store directory benchmark on the realistic channel: disk of many builds, link switch time.

- Disk: 10 builds of one environment (python numpy requests, one different extra package
  each time) stay in the store as real prefixes. The bytes they take (every inode once, as
  ``du`` counts) vs one install of the same environment and vs 10 separate installs (10 copies).
  Target: the store ≤ 1.2× one install.
- Link: the time from each build's ``Packed`` being recorded to ``envs/<name>`` pointing at it
  (polled every 2 ms). Target < 1 s.

    python -m tests.bench.bench_store [--builds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from services.packer.store import link_of, link_target
from shared.embedded.postgres import PostgresCluster
from shared.logging import configure_logging
from tests.bench.bench_packer import BASE, P7_SPECS, Env
from tests.channels.realistic import build_realistic_channel
from tests.channels.server import ChannelServer


def disk_bytes(*roots: Path) -> int:
    """Allocated bytes under ``roots``, each inode counted once (``du``'s rule)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            for name in (*dirnames, *filenames):
                st = os.lstat(os.path.join(dirpath, name))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
    return total


def copy_bytes(root: Path) -> int:
    """Allocated bytes of ``root`` were it a copy of its own (every hard link counted)."""
    return sum(
        os.lstat(os.path.join(d, n)).st_blocks * 512
        for d, dirs, files in os.walk(root)
        for n in (*dirs, *files)
    )


async def link_lag(env: Env, build_id: int, link: Path, prefix: Path) -> float:
    """Seconds from ``Packed`` recorded to the link on the build's prefix."""
    while link_target(link) != prefix:
        await asyncio.sleep(0.002)
    switched = time.time()
    recorded = await env.store.pool.fetchval(
        "SELECT recorded_at FROM events WHERE stream = $1 AND type = 'Packed'", f"build-{build_id}"
    )
    return switched - recorded.timestamp()


async def main(builds: int) -> None:
    configure_logging("WARNING", "console")
    work = Path(tempfile.mkdtemp(prefix="cs-bench-store-"))
    channel_dir = build_realistic_channel(work / "channel")
    cluster = PostgresCluster(work / "pg" / "data", fast=True)
    cluster.start()
    try:
        with ChannelServer(channel_dir) as server:
            async with Env(cluster, work / "store", concurrency=2) as env:
                store = env.settings.store_root
                link = link_of(store, "bench", "sci")
                lags, prefixes = [], []
                for i in range(builds):
                    extra = P7_SPECS[i % len(P7_SPECS)]
                    build_id = await env.submit(server.url, (*BASE, *extra), "sci")
                    assert await env.wait(build_id) == "COMPLETED"
                    prefix = Path(
                        await env.store.pool.fetchval(
                            "SELECT key FROM build_artifacts WHERE build_id = $1"
                            " AND artifact_type = 'DIRECTORY'",
                            build_id,
                        )
                    )
                    lags.append(await asyncio.wait_for(link_lag(env, build_id, link, prefix), 30))
                    prefixes.append(prefix)
                one = copy_bytes(prefixes[0])
                in_store = disk_bytes(store)
                with_cache = disk_bytes(store, Path(env.settings.data_dir) / "cache" / "pkgs")
        n = len(prefixes)
        print(f"{n} builds of one environment (realistic channel, python numpy requests + 1)")
        print(f"one install (a copy of build 1's prefix): {one / 1e6:8.1f} MB   1.00x")
        print(
            f"the store, {n} prefixes (hard links once):  {in_store / 1e6:8.1f} MB"
            f"   {in_store / one:.2f}x  (target <= 1.2x)"
        )
        print(
            f"the store + the package cache:          {with_cache / 1e6:8.1f} MB"
            f"   {with_cache / one:.2f}x"
        )
        print(f"{n} separate installs (copies):            {n * one / 1e6:8.1f} MB   {n:.2f}x")
        print(
            f"Packed -> envs link switched: p50 {statistics.median(lags) * 1e3:.0f} ms,"
            f" max {max(lags) * 1e3:.0f} ms (target < 1000 ms)"
        )
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    await asyncio.sleep(0.05)  # rattler's threads crash the interpreter at exit otherwise


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--builds", type=int, default=10)
    asyncio.run(main(parser.parse_args().builds))
