"""Cost as environments grow, through the whole stack, side by side with the tools run directly
(issue 18), on the large channel.

For environments of 10, 50, 150 and all packages of the large channel (closed prefixes of
`tests.channels.large.growth_order`), in one run:

- direct: rattler solve + install, conda-pack, and an OCI image of the prefix made by `umoci
  insert` (`bench_large.direct_baseline` plus the image), all cold;
- stack: submit -> ImagePushed (the build COMPLETED first) through relay, projector, solver,
  packer and the registry's image builder over NATS, cold (fresh database, NATS, data dir);
  then the identical spec again (warm); then a one-package change (the next package of the
  growth order, or for the whole channel the last one left out);
- image: `Packed` -> `ImagePushed` (recorded times) for the cold build, the warm rebuild and
  the one-package change (one new layer), against the packer's own time (`Solved` ->
  `Packed`) of the same build;
- archive: the packer's archive time (its build log) against `tar -c | pigz -p2` of the prefix;
- disk: everything under the stack's data dir (store, caches, artifacts) once built.

    python -m tests.bench.bench_large_stack [--sizes 10,50,150,all] [--no-preparer]

The registry runs its image preparer (layers made on `Solved`, beside the packer) unless
`--no-preparer` is given; run both to see what it changes.

Targets (issue 18): P1 stack/direct <= 1.0x; P2 warm/cold <= 0.05x; one-package change <=
0.3x cold; Packed -> ImagePushed <= 0.3x the pack time, < 0.5 s when every layer is known;
archive <= 1.5x tar|pigz.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from services.registry.builder import ImageBuilder
from services.registry.preparer import ImagePreparer
from shared.buildlog import BuildLog
from shared.embedded.postgres import PostgresCluster
from shared.events import stream_of_build
from shared.logging import configure_logging
from tests.bench.bench_large import (
    DirectFigures,
    direct_baseline,
    disk_usage,
    environment_specs,
    parse_sizes,
    tar_pigz,
)
from tests.bench.bench_packer import Env
from tests.channels.large import build_large_channel, channel_depends, growth_order
from tests.channels.server import ChannelServer

ARCHIVE_LINE = re.compile(r"archive written: .* in ([\d.]+) s")


@dataclass(frozen=True)
class StackFigures:
    cold_s: float
    """Submit -> ImagePushed (the build COMPLETED before): every artifact made, cold."""
    warm_s: float
    change_s: float
    pack_s: float
    """The packer's time, Solved -> Packed, of the cold build."""
    archive_s: float
    """conda-pack's part of it (the build log's "archive written ... in N s")."""
    image_cold_s: float
    image_warm_s: float
    """Packed -> ImagePushed of the cold build and of the warm rebuild."""
    change_pack_s: float
    change_image_s: float
    """Solved -> Packed and Packed -> ImagePushed of the one-package change: one new layer."""
    disk_bytes: int


def direct_image(prefix: Path, work: Path) -> float:
    """Seconds for `umoci` to make an OCI image whose one layer is the prefix at /opt/conda."""
    layout = work / "oci"
    t = time.perf_counter()
    subprocess.run(["umoci", "init", "--layout", str(layout)], check=True)
    subprocess.run(["umoci", "new", "--image", f"{layout}:env"], check=True)
    subprocess.run(
        ["umoci", "insert", "--image", f"{layout}:env", str(prefix), "/opt/conda"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t


async def _recorded(env: Env, build_id: int, event_type: str, timeout: float = 900) -> float:
    """When ``event_type`` was recorded on the build's stream (epoch seconds), waiting for it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        at = await env.store.pool.fetchval(
            "SELECT recorded_at FROM events WHERE stream = $1 AND type = $2",
            stream_of_build(build_id),
            event_type,
        )
        if at is not None:
            return at.timestamp()
        await asyncio.sleep(0.02)
    raise TimeoutError(f"build {build_id}: no {event_type}")


async def _build(env: Env, url: str, deps: list[str], name: str) -> tuple[int, float]:
    """The build's id and its seconds from submit to its image pushed."""
    submitted_at = time.time()
    build_id = await env.submit(url, tuple(deps), name)
    status = await env.wait(build_id, timeout=1800)
    assert status == "COMPLETED", (build_id, status)
    return build_id, await _recorded(env, build_id, "ImagePushed") - submitted_at


async def _image_lag(env: Env, build_id: int) -> float:
    return await _recorded(env, build_id, "ImagePushed") - await _recorded(env, build_id, "Packed")


async def stack_figures(
    cluster: PostgresCluster,
    url: str,
    deps: list[str],
    change: list[str],
    root: Path,
    prepare: bool,
) -> StackFigures:
    async with Env(cluster, root, concurrency=2) as env:
        builder = ImageBuilder(env.artifacts, env.settings)
        await env.stack.run_workers(builder, *([ImagePreparer(builder)] if prepare else []))
        cold_id, cold_s = await _build(env, url, deps, "ds")
        image_cold = await _image_lag(env, cold_id)
        pack_s = await _recorded(env, cold_id, "Packed") - await _recorded(env, cold_id, "Solved")
        found = ARCHIVE_LINE.search(await BuildLog(env.store.pool, cold_id).text())
        warm_id, warm_s = await _build(env, url, deps, "ds")
        image_warm = await _image_lag(env, warm_id)
        change_id, change_s = await _build(env, url, change, "ds")
        change_image = await _image_lag(env, change_id)
        change_pack = await _recorded(env, change_id, "Packed") - await _recorded(
            env, change_id, "Solved"
        )
        return StackFigures(
            cold_s=cold_s,
            warm_s=warm_s,
            change_s=change_s,
            pack_s=pack_s,
            archive_s=float(found.group(1)) if found else float("nan"),
            image_cold_s=image_cold,
            image_warm_s=image_warm,
            change_pack_s=change_pack,
            change_image_s=change_image,
            disk_bytes=await asyncio.to_thread(disk_usage, env.settings.data_dir),
        )


def one_package_change(order: list[str], deps: list[str]) -> list[str]:
    """The next package of the growth order added (still closed), or the last one dropped."""
    return order[: len(deps) + 1] if len(deps) < len(order) else deps[:-1]


def table(rows: list[tuple[DirectFigures, float, float, StackFigures]]) -> str:
    head = (
        f"{'pkgs':>5} {'direct s':>9} {'stack s':>8} {'P1':>6} {'warm s':>7} {'P2':>6}"
        f" {'+1 pkg s':>9} {'+1/cold':>8} {'pack s':>7} {'img cold s':>11} {'img/pack':>9}"
        f" {'img warm s':>11} {'+1 img s':>9} {'+1 img/pack':>12}"
        f" {'archive s':>10} {'pigz s':>7} {'arch/pigz':>10} {'disk MB':>8}"
    )
    lines = [head, "-" * len(head)]
    for d, umoci_s, pigz_s, s in rows:
        direct_s = d.solve_s + d.install_s + d.pack_s + umoci_s
        lines.append(
            f"{d.packages:>5} {direct_s:>9.2f} {s.cold_s:>8.2f} {s.cold_s / direct_s:>5.2f}x"
            f" {s.warm_s:>7.2f} {s.warm_s / s.cold_s:>5.3f}x {s.change_s:>9.2f}"
            f" {s.change_s / s.cold_s:>7.2f}x {s.pack_s:>7.2f} {s.image_cold_s:>11.2f}"
            f" {s.image_cold_s / s.pack_s:>8.2f}x {s.image_warm_s:>11.2f}"
            f" {s.change_image_s:>9.2f} {s.change_image_s / s.change_pack_s:>11.2f}x"
            f" {s.archive_s:>10.2f}"
            f" {pigz_s:>7.2f} {s.archive_s / pigz_s:>9.2f}x {s.disk_bytes / 1e6:>8.0f}"
        )
    return "\n".join(lines)


async def main(sizes: list[int | None], prepare: bool) -> None:
    configure_logging("WARNING", "console")
    for tool in ("pigz", "umoci"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (./dev test installs it)")
    work = Path(tempfile.mkdtemp(prefix="cs-bench-large-stack-"))
    cluster = PostgresCluster(work / "pg" / "data", fast=True)
    cluster.start()
    try:
        channel = build_large_channel(work / "channel")
        order = growth_order(channel_depends(channel))
        rows = []
        with ChannelServer(channel) as server:
            for n, deps in environment_specs(channel, sizes).items():
                direct_dir = work / f"direct-{n}"
                direct = await direct_baseline(server.url, deps, direct_dir)
                umoci_s = await asyncio.to_thread(direct_image, direct_dir / "prefix", direct_dir)
                pigz_out = direct_dir / "again.tar.gz"
                t = time.perf_counter()
                await asyncio.to_thread(tar_pigz, direct_dir / "prefix", pigz_out)
                pigz_s = time.perf_counter() - t
                shutil.rmtree(direct_dir)
                change = one_package_change(order, deps)
                stack = await stack_figures(
                    cluster, server.url, deps, change, work / f"stack-{n}", prepare
                )
                shutil.rmtree(work / f"stack-{n}", ignore_errors=True)
                rows.append((direct, umoci_s, pigz_s, stack))
                print(table(rows[-1:]).splitlines()[-1], flush=True)
        print("\nstack vs direct tools (solve+install+conda-pack+umoci), one run:")
        print(table(rows))
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    await asyncio.sleep(0.05)  # rattler's threads crash the interpreter at exit otherwise


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=parse_sizes, default=parse_sizes("10,50,150,all"))
    parser.add_argument(
        "--no-preparer",
        action="store_true",
        help="the registry makes an image only on Packed, as before the image preparer",
    )
    args = parser.parse_args()
    asyncio.run(main(args.sizes, not args.no_preparer))
