"""Many machines, measured: build throughput with one packer vs two, and (when the load
benchmark is there) the API load through haproxy with two API processes vs one.

Each run starts the topology of ``tests/harness/cluster.py`` (a NATS cluster of three, Postgres,
SeaweedFS, haproxy, every service a process of its own with its own cold caches) and submits the
same batch of builds through the load balancer:

- packers: the batch on the realistic channel (real CPython, numpy, requests: installs and
  conda-pack archives of 20-50 MB) with 1 packer, then 2 packers, each taking one build at a
  time with one gzip thread (``PACKER_CONCURRENCY=1``, ``PACKER_PACK_THREADS=1``: a packer
  stands for a small machine), so the number of processes is what changes. Prints seconds
  from the first submission until every build is terminal, builds per minute, and the ratio.
- ``--load``: runs ``tests/bench/bench_load.py`` (50 readers + 10 submitters) against one API
  process directly, then against two behind haproxy, on one cluster.

    python -m tests.bench.bench_cluster [--builds 8] [--channel realistic|tiny] [--load]
                                        [--load-duration 60]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import yaml

from shared.embedded.postgres import PostgresCluster
from tests.bench.bench_packer import P7_SPECS
from tests.channels.batch import batch_package, build_batch_channel
from tests.channels.realistic import build_realistic_channel
from tests.channels.server import ChannelServer
from tests.harness.cluster import TERMINAL_EVENTS, Cluster
from tests.harness.s3server import S3Server

ROOT = Path(__file__).resolve().parents[2]
LOAD_SCRIPT = ROOT / "tests" / "bench" / "bench_load.py"


def batch(channel: str, kind: str, count: int) -> list[str]:
    """``count`` environments, each with a package set of its own (no archive is reused)."""
    if kind == "realistic" and count > len(P7_SPECS):
        raise SystemExit(f"the realistic channel offers {len(P7_SPECS)} distinct builds")
    specs = []
    for i in range(count):
        deps = [batch_package(i)] if kind == "tiny" else ["python", *P7_SPECS[i]]
        doc = {"name": f"bench-{i}", "channels": [channel], "dependencies": deps}
        specs.append(yaml.safe_dump(doc))
    return specs


@asynccontextmanager
async def topology(
    pg: PostgresCluster, s3: S3Server, root: Path, counts: dict[str, int], settings: dict[str, str]
) -> AsyncIterator[Cluster]:
    name = uuid.uuid4().hex[:8]
    bucket = f"bench-{name}"
    s3.client().make_bucket(bucket)
    cluster = Cluster(
        root / name,
        await pg.create_database(f"bench_{name}"),
        s3,
        bucket,
        counts=counts,
        settings={"CONDA_STORE_LOG_LEVEL": "WARNING", **settings},
    )
    try:
        await cluster.start()
        yield cluster
    finally:
        cluster.stop()


async def run_batch(cluster: Cluster, specs: list[str]) -> tuple[float, dict[str, int]]:
    """Seconds from the first submission until every build is terminal, and how they ended."""
    async with cluster.client() as api:
        started = time.perf_counter()
        ids = []
        for spec in specs:
            r = await api.post(
                "/api/v1/specification/", json={"namespace": "bench", "specification": spec}
            )
            r.raise_for_status()
            ids.append(int(r.json()["data"]["build_id"]))
        while True:
            outcomes = await cluster.build_outcomes(ids)
            ended = {
                b: next(t for t in TERMINAL_EVENTS if o.get(t))
                for b, o in outcomes.items()
                if any(o.get(t) for t in TERMINAL_EVENTS)
            }
            if len(ended) == len(ids):
                break
            await asyncio.sleep(0.2)
        seconds = time.perf_counter() - started
    tally: dict[str, int] = {}
    for outcome in ended.values():
        tally[outcome] = tally.get(outcome, 0) + 1
    return seconds, tally


async def bench_packers(pg: PostgresCluster, s3: S3Server, root: Path, args) -> None:  # type: ignore[no-untyped-def]
    with tempfile.TemporaryDirectory(prefix="bench-channel-") as tmp:
        if args.channel == "tiny":
            path = build_batch_channel(Path(tmp) / "channel", args.builds)
        else:
            path = build_realistic_channel(Path(tmp) / "channel")
        with ChannelServer(path) as server:
            specs = batch(server.url, args.channel, args.builds)
            figures = {}
            for packers in (1, 2):
                counts = {"relay": 1, "projector": 1, "solver": 2, "packer": packers, "api": 1}
                # one build at a time on one core each: a packer stands for a small machine
                settings = {
                    "CONDA_STORE_PACKER_CONCURRENCY": "1",
                    "CONDA_STORE_PACKER_PACK_THREADS": "1",
                }
                async with topology(pg, s3, root, counts, settings) as cluster:
                    seconds, ended = await run_batch(cluster, specs)
                figures[packers] = seconds
                rate = len(specs) / seconds * 60
                print(
                    f"{packers} packer(s): {len(specs)} builds in {seconds:.1f} s "
                    f"({rate:.1f} builds/min), {ended}",
                    flush=True,
                )
    print(
        f"throughput 2 packers / 1 packer: {figures[1] / figures[2]:.2f}x "
        f"({args.channel} channel, {args.builds} builds, each packer one build and one gzip "
        "thread at a time)"
    )


async def bench_load(pg: PostgresCluster, s3: S3Server, root: Path, args) -> None:  # type: ignore[no-untyped-def]
    if not LOAD_SCRIPT.exists():
        print(f"load benchmark not available ({LOAD_SCRIPT.relative_to(ROOT)} is missing)")
        return
    path = build_batch_channel(root / "load-channel", 1)
    with ChannelServer(path) as server:
        counts = {"relay": 1, "projector": 1, "solver": 2, "packer": 2, "registry": 1, "api": 2}
        async with topology(pg, s3, root, counts, {}) as cluster:
            direct = f"http://127.0.0.1:{cluster.of('api')[0].port}"
            for label, url in (("1 API process", direct), ("2 API processes + haproxy", None)):
                target = url or cluster.api_url
                print(f"--- load: {label} ({target})", flush=True)
                command = [sys.executable, str(LOAD_SCRIPT), "--api", target]
                command += ["--channel", server.url, "--duration", str(args.load_duration)]
                await asyncio.to_thread(subprocess.run, command, cwd=ROOT, check=False)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--builds", type=int, default=8)
    parser.add_argument("--channel", choices=("realistic", "tiny"), default="realistic")
    parser.add_argument("--load", action="store_true", help="also run the API load benchmark")
    parser.add_argument("--load-duration", type=int, default=60)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cs-bench-cluster-"))
    pg = PostgresCluster(root / "pg", fast=True)
    pg.start()
    s3 = S3Server()
    s3.start()
    try:
        await bench_packers(pg, s3, root, args)
        if args.load:
            await bench_load(pg, s3, root, args)
    finally:
        s3.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
