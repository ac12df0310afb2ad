"""Cost as environments grow, on the large channel (issue 18): the direct-tools baseline.

For environments of 10, 50, 150 and all packages of the large channel (each one closed under
its dependencies, see `tests.channels.large.growth_order`), the tools run directly, with no
service in between, in a fresh directory each time:

- solve: rattler, over HTTP from the channel served on 127.0.0.1, cold repodata cache (solve
  and install times include the 0.05 s pause `tests.channels.envs` leaves rattler's threads);
- install: rattler, into a new prefix from a cold package cache (download, extract, link);
- conda-pack: the prefix as `.tar.gz` (its default level 4, one thread a core);
- tar | pigz: `tar -c prefix | pigz -p2` (level 6), the practical limit for an archive;
- disk: the prefix alone, and the prefix with the package cache it is hard-linked from
  (`du` semantics: a file counts once however many links it has).

`direct_baseline` is the reusable part: the stack's figures for the same specs are meant to
be divided by it, side by side in one run.

    python tests/bench/bench_large.py [--sizes 10,50,150,all] [--repeat 1]

The first run on a machine builds the large channel (minutes; then cached).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import conda_pack

from tests.channels.envs import install, solve
from tests.channels.large import build_large_channel, channel_depends, growth_order
from tests.channels.pinned import channel_figures
from tests.channels.server import ChannelServer

PIGZ_THREADS = 2


@dataclass(frozen=True)
class DirectFigures:
    """One environment made with the tools directly: seconds, and bytes on disk."""

    packages: int
    solve_s: float
    install_s: float
    pack_s: float
    tar_pigz_s: float
    prefix_bytes: int
    disk_bytes: int
    """The prefix and the package cache together."""
    pack_bytes: int
    tar_pigz_bytes: int


def disk_usage(*paths: Path) -> int:
    """Bytes allocated below `paths`, each inode once (what `du -s -c` reports)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for path in paths:
        for dirpath, dirnames, filenames in os.walk(path):
            for name in dirnames + filenames:
                st = os.lstat(os.path.join(dirpath, name))
                if (st.st_dev, st.st_ino) not in seen:
                    seen.add((st.st_dev, st.st_ino))
                    total += st.st_blocks * 512
    return total


def tar_pigz(prefix: Path, out: Path) -> None:
    """`tar -c prefix | pigz -p2 > out`, failing if either side fails."""
    script = 'set -o pipefail; tar -C "$1" -cf - "$2" | pigz -p "$3" > "$4"'
    argv = [str(prefix.parent), prefix.name, str(PIGZ_THREADS), str(out)]
    subprocess.run(["bash", "-c", script, "tar-pigz", *argv], check=True)


async def direct_baseline(channel_url: str, specs: Sequence[str], work: Path) -> DirectFigures:
    """Solve, install, conda-pack and tar|pigz `specs` from `channel_url` with cold caches in
    `work` (created; left in place for the caller to inspect or delete)."""
    await asyncio.to_thread(work.mkdir, parents=True)
    t = time.perf_counter()
    records = await solve(channel_url, specs, work, timeout_s=300)
    solve_s = time.perf_counter() - t
    prefix = work / "prefix"
    t = time.perf_counter()
    await install(records, prefix, work)
    install_s = time.perf_counter() - t
    packed = work / "conda-pack.tar.gz"
    t = time.perf_counter()
    await asyncio.to_thread(
        conda_pack.pack,
        prefix=str(prefix),
        output=str(packed),
        n_threads=os.cpu_count() or 1,
        ignore_missing_files=True,
    )
    pack_s = time.perf_counter() - t
    tgz = work / "tar-pigz.tar.gz"
    t = time.perf_counter()
    await asyncio.to_thread(tar_pigz, prefix, tgz)
    tar_pigz_s = time.perf_counter() - t
    return DirectFigures(
        packages=len(records),
        solve_s=solve_s,
        install_s=install_s,
        pack_s=pack_s,
        tar_pigz_s=tar_pigz_s,
        prefix_bytes=await asyncio.to_thread(disk_usage, prefix),
        disk_bytes=await asyncio.to_thread(disk_usage, prefix, work / "pkgs"),
        pack_bytes=packed.stat().st_size,
        tar_pigz_bytes=tgz.stat().st_size,
    )


def environment_specs(channel: Path, sizes: Sequence[int | None]) -> dict[int, list[str]]:
    """For each size (None: the whole channel), the package names of a closed environment."""
    order = growth_order(channel_depends(channel))
    return {len(order[:n] if n else order): order[:n] if n else order for n in sizes}


def median_figures(runs: list[DirectFigures]) -> DirectFigures:
    values = {f.name: statistics.median(getattr(r, f.name) for r in runs) for f in fields(runs[0])}
    return DirectFigures(**{k: type(getattr(runs[0], k))(v) for k, v in values.items()})


def table(rows: list[DirectFigures]) -> str:
    """The figures as a fixed-width table (MB are 10^6 bytes)."""
    head = (
        f"{'pkgs':>5} {'solve s':>8} {'install s':>10} {'conda-pack s':>13} {'tar|pigz s':>11}"
        f" {'pack/pigz':>10} {'prefix MB':>10} {'+cache MB':>10} {'pack MB':>8} {'pigz MB':>8}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r.packages:>5} {r.solve_s:>8.2f} {r.install_s:>10.2f} {r.pack_s:>13.2f}"
            f" {r.tar_pigz_s:>11.2f} {r.pack_s / r.tar_pigz_s:>9.2f}x"
            f" {r.prefix_bytes / 1e6:>10.0f} {r.disk_bytes / 1e6:>10.0f}"
            f" {r.pack_bytes / 1e6:>8.0f} {r.tar_pigz_bytes / 1e6:>8.0f}"
        )
    return "\n".join(lines)


async def main(sizes: Sequence[int | None], repeat: int) -> None:
    if shutil.which("pigz") is None:
        raise SystemExit("pigz not found: apt-get install pigz (./dev test installs it)")
    work = Path(tempfile.mkdtemp(prefix="cs-bench-large-"))
    try:
        t = time.perf_counter()
        channel = build_large_channel(work / "channel")
        figures = channel_figures(channel)
        print(
            f"large channel: {figures.packages} packages, {figures.archive_bytes / 1e6:.0f} MB"
            f" of archives, {figures.payload_bytes / 1e6:.0f} MB of files"
            f" (ready in {time.perf_counter() - t:.1f} s)"
        )
        rows = []
        with ChannelServer(channel) as server:
            for n, specs in environment_specs(channel, sizes).items():
                runs = []
                for i in range(repeat):
                    run_dir = work / f"n{n}-{i}"
                    runs.append(await direct_baseline(server.url, specs, run_dir))
                    shutil.rmtree(run_dir)
                    assert runs[-1].packages == n, (n, runs[-1].packages)
                rows.append(median_figures(runs))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
        print(f"\ndirect tools, cold caches, median of {repeat}:")
        print(table(rows))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def parse_sizes(text: str) -> list[int | None]:
    return [None if part == "all" else int(part) for part in text.split(",")]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("10,50,150,all"))
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.sizes, args.repeat))
