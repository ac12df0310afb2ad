"""Solver benchmark (a script, not a test): remote solve over NATS vs rattler in-process, and
cache-hit latency, on a synthetic channel of ~30,000 records.

    python -m tests.bench.bench_solver [--names 3000] [--versions 10] [--runs 7]

Starts a throwaway Postgres and nats-server, serves the channel over HTTP, runs the solve
responder in this process (own NATS connection, own resolver) and prints medians. Targets:
remote / direct <= 1.2x, cache hit < 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import rattler

from services.solver.remote import request_solve, serve
from services.solver.resolve import Resolver
from services.solver.types import SolveRequest
from shared.bus.jetstream import connect_nats
from shared.embedded.nats import NatsServer
from shared.embedded.postgres import PostgresCluster
from shared.eventstore import EventStore
from shared.settings import Settings
from tests.channels.server import ChannelServer


def write_channel(root: Path, names: int, versions: int, seed: int = 7) -> int:
    """repodata.json only (the solver never downloads packages); returns the record count."""
    rng = random.Random(seed)
    packages: dict[str, dict] = {}
    for i in range(names):
        for v in range(1, versions + 1):
            deps = []
            for j in rng.sample(range(i), min(i, 3)) if i else []:
                deps.append(f"pkg{j:05d} >={rng.randint(1, versions // 2)}.0")
            fn = f"pkg{i:05d}-{v}.0-h0_0.conda"
            digest = hashlib.sha256(fn.encode()).hexdigest()
            packages[fn] = {
                "name": f"pkg{i:05d}",
                "version": f"{v}.0",
                "build": "h0_0",
                "build_number": 0,
                "depends": deps,
                "license": "MIT",
                "md5": digest[:32],
                "sha256": digest,
                "size": 1000,
                "subdir": "linux-64",
                "timestamp": 1_700_000_000_000 + i,
            }
    for subdir, records in (("linux-64", packages), ("noarch", {})):
        (root / subdir).mkdir(parents=True, exist_ok=True)
        doc = {"info": {"subdir": subdir}, "packages": {}, "packages.conda": records}
        (root / subdir / "repodata.json").write_text(json.dumps(doc))
    return len(packages)


def ms(samples: list[float]) -> str:
    """Median and minimum (the least disturbed run on a busy machine) in milliseconds."""
    median, best = statistics.median(samples) * 1000, min(samples) * 1000
    return f"median {median:.1f} ms, min {best:.1f} ms over {len(samples)} runs"


async def timed(fn, runs: int) -> list[float]:  # type: ignore[no-untyped-def]
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        out.append(time.perf_counter() - t0)
    return out


async def bench(args: argparse.Namespace, tmp: Path, dsn: str, nats_url: str, url: str) -> None:
    roots = [f"pkg{i:05d}" for i in range(args.names - 20, args.names)]
    store = await EventStore.connect(dsn)
    settings = Settings(database_url=dsn, nats_url=nats_url, data_dir=tmp / "data")

    direct_gateway = rattler.Gateway(cache_dir=tmp / "direct-cache")
    specs = [rattler.MatchSpec(r) for r in roots]

    async def direct() -> list:
        return await rattler.solve(
            [rattler.Channel(url)],
            specs,
            gateway=direct_gateway,
            platforms=["linux-64", "noarch"],
            timeout=timedelta(seconds=120),
        )

    solution = await direct()  # warm: fetch and parse repodata once

    resolver = Resolver.from_settings(settings, store.pool, index_channels=False)
    server_nc = await connect_nats(nats_url, "bench-solver")
    client_nc = await connect_nats(nats_url, "bench-client")
    stop = asyncio.Event()
    responder = asyncio.create_task(serve(server_nc, resolver, settings, stop))
    await asyncio.sleep(0.2)
    fresh = SolveRequest(channels=[url], conda=roots, platforms=["linux-64"], use_cache=False)
    cached = fresh.model_copy(update={"use_cache": True})

    async def remote(request: SolveRequest) -> None:
        reply = await request_solve(client_nc, settings, request, timeout=120)
        assert reply["status"] == "ok", reply

    await remote(cached)  # warm the responder's gateway and fill the cache
    direct_s: list[float] = []
    remote_s: list[float] = []
    for _ in range(args.runs):  # interleaved, so machine noise hits both alike
        direct_s += await timed(direct, 1)
        remote_s += await timed(lambda: remote(fresh), 1)
    hit_s = await timed(lambda: remote(cached), args.runs * 5)
    t0 = time.perf_counter()
    await resolver.fingerprint(cached)
    fingerprint_s = time.perf_counter() - t0

    stop.set()
    await responder
    await server_nc.close()
    await client_nc.close()
    await store.close()

    d, r = statistics.median(direct_s), statistics.median(remote_s)
    print(f"channel: {args.records} records; 20 root specs; solution {len(solution)} records")
    print(f"direct rattler.solve, warm gateway: {ms(direct_s)}")
    print(f"remote solve over NATS, use_cache=false: {ms(remote_s)}")
    best = min(remote_s) / min(direct_s)
    paired = statistics.median(a / b for a, b in zip(remote_s, direct_s, strict=True))
    print(
        f"ratio remote/direct: medians {r / d:.2f}x, mins {best:.2f}x,"
        f" median of back-to-back pairs {paired:.2f}x (target <= 1.2x)"
    )
    print(f"cache hit over NATS: {ms(hit_s)} (target < 20 ms)")
    print(f"  of which repodata fingerprint: {fingerprint_s * 1000:.1f} ms")
    print(f"solver calls made by the responder: {resolver.solver.solve_count}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--names", type=int, default=3000)
    parser.add_argument("--versions", type=int, default=10)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-solver-"))
    args.records = write_channel(tmp / "channel", args.names, args.versions)
    pg = PostgresCluster(Path(tempfile.mkdtemp(prefix="cs-pg-")) / "data", fast=True)
    nats = NatsServer(tmp / "nats")
    pg.start()
    nats.start()
    try:
        with ChannelServer(tmp / "channel") as channel:

            async def run() -> None:
                dsn = await pg.create_database("bench_solver")
                await bench(args, tmp, dsn, nats.url, channel.url)
                await asyncio.sleep(0.05)  # rattler's exit-crash workaround

            asyncio.run(run())
    finally:
        nats.stop()
        pg.stop()


if __name__ == "__main__":
    main()
