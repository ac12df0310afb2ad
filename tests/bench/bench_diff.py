"""Build diff benchmark: ``GET /api/v1/build/{a}/diff/{b}/`` for two builds of 300 packages.

Seeds two completed builds of one environment (300 conda and pip packages each; 30 upgraded,
10 added, 10 removed, 5 rebuilt), serves the real API gateway under uvicorn on loopback, and
times the diff beside a plain ``GET /api/v1/build/{b}/`` (the baseline: one build's read) in
the same run. The target is < 50 ms per diff.

    python -m tests.bench.bench_diff [--packages 300] [--requests 50]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from shared.embedded.ports import free_port
from shared.embedded.postgres import PostgresCluster
from shared.events import BuildStarted, NewEvent, PackageRef, Packed, Solved, SpecSubmitted
from shared.events import new_event as event
from shared.eventstore import EventStore
from shared.projections import rebuild_projections
from shared.settings import Settings
from tests.harness.serving import serve_healthy

TARGET_MS = 50.0
CHANNEL = "https://conda.anaconda.org/conda-forge"


def packages(count: int, second: bool) -> list[PackageRef]:
    """The first or second build's packages: the second changes 55 of them."""
    found = []
    for i in range(count):
        if second and i < 10:
            continue  # removed
        minor = i + 1 if second and 10 <= i < 40 else i
        build = "h1_0" if second and 40 <= i < 45 else "h0_0"
        manager = "pip" if i % 10 == 9 else "conda"
        found.append(
            PackageRef(
                manager=manager,  # type: ignore[arg-type]
                name=f"package-{i:03d}",
                version=f"1.{minor}.0",
                build="" if manager == "pip" else build,
                channel="" if manager == "pip" else CHANNEL,
                subdir="linux-64",
            )
        )
    if second:
        found += [
            PackageRef(name=f"new-{i}", version="0.1", build="h0_0", channel=CHANNEL)
            for i in range(10)
        ]
    return found


def build_events(build_id: int, pkgs: list[PackageRef]) -> list[NewEvent]:
    key = f"{build_id:08x}-1700000000-{build_id}-big"
    spec = {"name": "big", "channels": ["conda-forge"], "dependencies": [p.name for p in pkgs]}
    return [
        event(
            SpecSubmitted(
                build_id=build_id,
                namespace="default",
                environment="big",
                specification=spec,
                sha256=f"{build_id:064x}",
                build_key=key,
            )
        ),
        event(BuildStarted(build_id=build_id)),
        event(
            Solved(build_id=build_id, lockfile_key=f"l/{key}", yaml_key=f"y/{key}", packages=pkgs)
        ),
        event(Packed(build_id=build_id, archive_key=None, logs_key=f"logs/{key}", size=1)),
    ]


async def timed(client: httpx.AsyncClient, path: str, n: int) -> list[float]:
    response = await client.get(path)  # warm-up, and proof it answers
    assert response.status_code == 200, (path, response.text[:300])
    times = []
    for _ in range(n):
        start = time.perf_counter()
        response = await client.get(path)
        times.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
    return sorted(times)


def p(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(len(values) * q))]


async def main(count: int, requests: int) -> int:
    from services.api.app import create_app

    root = Path(tempfile.mkdtemp(prefix="cs-bench-diff-"))
    cluster = PostgresCluster(root / "pg", fast=True)
    cluster.start()
    served = []
    try:
        dsn = await cluster.create_database("bench_diff")
        store = await EventStore.connect(dsn, max_size=10)
        await store.append("build-1", build_events(1, packages(count, second=False)))
        await store.append("build-2", build_events(2, packages(count, second=True)))
        await rebuild_projections(store)
        port = free_port()
        settings = Settings(
            data_dir=root / "data",
            database_url=dsn,
            api_port=port,
            secret="bench-secret-of-a-decent-length-0123456789",
        )
        served.append(await serve_healthy(create_app(settings), port))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            body = (await client.get("/api/v1/build/1/diff/2/")).json()["data"]
            print(f"two builds of {count} packages: {body['counts']}")
            diff = await timed(client, "/api/v1/build/1/diff/2/", requests)
            base = await timed(client, "/api/v1/build/2/", requests)
        print(f"\n{'request (ms)':40} {'p50':>7} {'p95':>7} {'max':>7}")
        for label, values in (("GET /build/1/diff/2/", diff), ("GET /build/2/ (baseline)", base)):
            p50, p95 = statistics.median(values), p(values, 0.95)
            print(f"{label:40} {p50:7.1f} {p95:7.1f} {values[-1]:7.1f}")
        ratio = statistics.median(diff) / statistics.median(base)
        verdict = "OK" if p(diff, 0.95) < TARGET_MS else "SLOWER THAN TARGET"
        print(
            f"\ndiff p50 = {ratio:.2f}x the baseline; p95 {p(diff, 0.95):.1f} ms vs target "
            f"{TARGET_MS:.0f} ms: {verdict}"
        )
        await store.close()
        return 0 if p(diff, 0.95) < TARGET_MS else 1
    finally:
        for task, stop in reversed(served):
            stop.set()
            await asyncio.wait_for(task, 10)
        cluster.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packages", type=int, default=300)
    parser.add_argument("--requests", type=int, default=50)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.packages, args.requests)))
