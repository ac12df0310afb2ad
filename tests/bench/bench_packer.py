"""Packer benchmark on the realistic channel (served over HTTP), printing figures.

- P1: submit → COMPLETED through the whole stack (relay, projector, solver, packer, events over
  NATS) with cold caches, vs the same steps in one script (rattler solve + install, conda-pack,
  copy of the archive into an artifact directory), also cold. Target ratio ≤ 1.3.
- P2: the same spec submitted again (warm caches) vs the cold build. Target ≤ 0.2.
- P7: 10 builds of different environments submitted at once vs one after another, each run
  from cold caches: failures (target 0) and throughput ratio (target ≥ 1.5).

    python tests/bench/bench_packer.py [--repeat 3] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import asyncpg
import conda_pack
import rattler
import yaml

from services.packer.linker import StoreLinker
from services.packer.worker import PackerWorker
from services.solver.resolve import Resolver
from services.solver.worker import SolverWorker
from shared.artifacts import artifact_store_from_settings
from shared.embedded.nats import NatsServer
from shared.embedded.postgres import PostgresCluster
from shared.eventstore import EventStore
from shared.logging import configure_logging
from shared.settings import Settings
from shared.spec import parse_specification
from shared.submission import submit_specification
from tests.channels.realistic import build_realistic_channel
from tests.channels.server import ChannelServer
from tests.harness.fixtures_stack import Stack

BASE = ("python", "numpy", "requests")
P7_SPECS = [
    ("numpy",),
    ("requests",),
    ("six",),
    ("idna",),
    ("certifi",),
    ("numpy", "six"),
    ("numpy", "idna"),
    ("requests", "six"),
    ("urllib3",),
    ("charset-normalizer",),
]


def spec(name: str, channel: str, deps: tuple[str, ...]) -> str:
    return yaml.safe_dump({"name": name, "channels": [channel], "dependencies": list(deps)})


class Env:
    """A fresh database, NATS server and data dir: every cache starts cold."""

    def __init__(self, cluster: PostgresCluster, root: Path, concurrency: int) -> None:
        self.cluster = cluster
        self.root = root
        self.concurrency = concurrency
        self.counter = 0

    async def __aenter__(self) -> Env:
        self.root.mkdir(parents=True)
        url = await self.cluster.create_database(f"bench_{os.getpid()}_{self.root.name}")
        self.nats = NatsServer(self.root / "nats")
        self.nats.start()
        self.settings = Settings(
            data_dir=self.root / "data",
            database_url=url,
            nats_url=self.nats.url,
            packer_concurrency=self.concurrency,
            log_level="WARNING",
        )
        self.store = await EventStore.connect(url, max_size=20)
        self.stack = await Stack(self.store, self.settings).start()
        artifacts = self.artifacts = artifact_store_from_settings(self.settings)
        self.resolver = Resolver.from_settings(self.settings, self.store.pool)
        await self.stack.run_workers(
            SolverWorker(self.resolver, artifacts, self.store.pool), concurrency=4
        )
        await self.stack.run_workers(
            PackerWorker(self.settings, artifacts, self.store.pool),
            concurrency=self.concurrency,
        )
        await self.stack.run_workers(StoreLinker(self.settings.store_root, self.store.pool))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.resolver.indexer is not None:
            await self.resolver.indexer.wait_idle()
        await self.stack.stop()
        await self.store.close()
        self.nats.stop()

    async def submit(self, channel: str, deps: tuple[str, ...], name: str | None = None) -> int:
        self.counter += 1
        text = spec(name or f"env{self.counter}", channel, deps)
        submitted = await submit_specification(self.store, parse_specification(text), "bench")
        return submitted.build_id

    async def wait(self, build_id: int, timeout: float = 600) -> str:
        return (await self.wait_all([build_id], timeout))[0]

    async def wait_all(self, build_ids: list[int], timeout: float = 600) -> list[str]:
        """Final statuses, from one poll of the read model every 20 ms for all the builds (a
        poller per build would cost the concurrent run more CPU than the serial one)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        done: dict[int, str] = {}
        while loop.time() < deadline and len(done) < len(build_ids):
            try:
                rows = await self.store.pool.fetch(
                    "SELECT id, status FROM builds WHERE id = ANY($1::bigint[])", build_ids
                )
            except asyncpg.UndefinedTableError:  # read model not created yet
                rows = []
            done = {
                r["id"]: str(r["status"])
                for r in rows
                if r["status"] in ("COMPLETED", "FAILED", "CANCELED")
            }
            await asyncio.sleep(0.02)
        return [done.get(b, "TIMEOUT") for b in build_ids]

    async def build(self, channel: str, deps: tuple[str, ...], name: str | None = None) -> float:
        t = time.perf_counter()
        status = await self.wait(await self.submit(channel, deps, name))
        assert status == "COMPLETED", status
        return time.perf_counter() - t


async def direct(channel: str, root: Path) -> float:
    """The same work in one script, no services: solve, install, pack, store."""
    t = time.perf_counter()
    records = await rattler.solve(
        sources=[rattler.Channel(channel)],
        specs=[rattler.MatchSpec(s) for s in BASE],
        gateway=rattler.Gateway(cache_dir=root / "repodata"),
        platforms=["linux-64", "noarch"],
        timeout=datetime.timedelta(seconds=300),
    )
    prefix = root / "prefix"
    await rattler.install(records, prefix, cache_dir=root / "pkgs", show_progress=False)
    out = root / "archive.tar.gz"
    await asyncio.to_thread(
        conda_pack.pack,
        prefix=str(prefix),
        output=str(out),
        n_threads=os.cpu_count() or 1,
        ignore_missing_files=True,
    )
    (root / "artifacts").mkdir()
    await asyncio.to_thread(shutil.copyfile, out, root / "artifacts" / "archive.tar.gz")
    return time.perf_counter() - t


def fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s (runs: {', '.join(f'{v:.2f}' for v in values)})"


async def main(repeat: int, concurrency: int) -> None:
    configure_logging("WARNING", "console")
    work = Path(tempfile.mkdtemp(prefix="cs-bench-packer-"))
    channel_dir = build_realistic_channel(work / "channel")
    cluster = PostgresCluster(work / "pg" / "data", fast=True)
    cluster.start()
    try:
        with ChannelServer(channel_dir) as server:
            url = server.url
            direct_t, cold_t, warm_t = [], [], []
            for i in range(repeat):
                direct_t.append(await direct(url, work / f"direct{i}"))
                async with Env(cluster, work / f"p1-{i}", concurrency) as env:
                    cold_t.append(await env.build(url, BASE, "sci"))
                    warm_t.append(await env.build(url, BASE, "sci"))
            p1 = statistics.median(cold_t) / statistics.median(direct_t)
            p2 = statistics.median(warm_t) / statistics.median(cold_t)
            print(f"direct script (solve+install+pack+store), cold: {fmt(direct_t)}")
            print(f"P1 stack submit->COMPLETED, cold:               {fmt(cold_t)}")
            print(f"P1 ratio stack/direct: {p1:.2f}x (target <= 1.3x)")
            ours = await env.artifacts.stat(f"builds/{env.counter}/archive.tar.gz")
            theirs = (work / f"direct{repeat - 1}" / "archive.tar.gz").stat().st_size
            assert ours is not None
            print(
                f"archive size: stack {ours.size / 1e6:.1f} MB, conda-pack default"
                f" {theirs / 1e6:.1f} MB ({ours.size / theirs:.2f}x)"
            )
            print(f"P2 identical rebuild, warm caches:              {fmt(warm_t)}")
            print(f"P2 ratio warm/cold: {p2:.2f}x (target <= 0.2x)")

            async with Env(cluster, work / "p7-serial", concurrency) as env:
                t = time.perf_counter()
                serial = [await env.wait(await env.submit(url, ("python", *d))) for d in P7_SPECS]
                serial_t = time.perf_counter() - t
            async with Env(cluster, work / "p7-concurrent", concurrency) as env:
                t = time.perf_counter()
                ids = [await env.submit(url, ("python", *d)) for d in P7_SPECS]
                together = await env.wait_all(ids)
                conc_t = time.perf_counter() - t
            failures = sum(s != "COMPLETED" for s in [*serial, *together])
            print(f"P7 10 different environments, serial:     {serial_t:.2f} s")
            print(f"P7 10 submitted at once (packer concurrency {concurrency}): {conc_t:.2f} s")
            print(f"P7 failures: {failures} (target 0)")
            print(f"P7 throughput concurrent/serial: {serial_t / conc_t:.2f}x (target >= 1.5x)")
    finally:
        cluster.stop()
        shutil.rmtree(work, ignore_errors=True)
    await asyncio.sleep(0.05)  # rattler's threads crash the interpreter at exit otherwise


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args()
    asyncio.run(main(args.repeat, args.concurrency))
