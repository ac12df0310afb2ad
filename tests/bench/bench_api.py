"""API benchmark: environment list and package search over 10,000 environments and 100,000
package rows, the API under uvicorn on loopback, load from wrk (or an asyncio httpx generator
when wrk is missing).

    python tests/bench/bench_api.py [--envs 10000] [--packages 100000] [--duration 10]
                                    [--connections 32]

Data is seeded as events (NamespaceCreated / SpecSubmitted / Solved) and projected by a full
replay, exactly as production reads it. Requests carry an admin token so every environment is
visible (the list filter then has to consider all 10,000 rows).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from shared.auth import AuthenticationToken, encode_token
from shared.embedded.ports import free_port
from shared.embedded.postgres import PostgresCluster
from shared.events import NamespaceCreated, PackageRef, Solved, SpecSubmitted, new_event
from shared.eventstore import Append, EventStore
from shared.projections import rebuild_projections

SECRET = "bench-secret-0123456789abcdef0123456789abcdef"
PACKAGES_PER_BUILD = 100


async def seed(store: EventStore, envs: int, packages: int) -> None:
    namespaces = [f"ns{i:03d}" for i in range(100)]
    await store.append_many(
        [
            Append(f"namespace-{ns}", [new_event(NamespaceCreated(namespace=ns))])
            for ns in namespaces
        ]
    )
    batch: list[Append] = []
    for i in range(1, envs + 1):
        ns = namespaces[i % len(namespaces)]
        data = SpecSubmitted(
            build_id=i,
            namespace=ns,
            environment=f"env-{i:05d}",
            specification={"name": f"env-{i:05d}", "dependencies": ["python"]},
            sha256=f"{i:064x}",
            build_key=f"{i:08x}-1-{i}-env-{i:05d}",
        )
        batch.append(Append(f"build-{i}", [new_event(data)]))
        if len(batch) == 1000:
            await store.append_many(batch)
            batch = []
    for b in range(1, packages // PACKAGES_PER_BUILD + 1):
        pkgs = [
            PackageRef(
                name=f"pkg{(b * PACKAGES_PER_BUILD + j) % 20000:05d}-lib",
                version=f"{b % 5}.{j}",
                build="h0",
                channel="https://conda.anaconda.org/conda-forge",
            )
            for j in range(PACKAGES_PER_BUILD)
        ]
        data = Solved(build_id=b, lockfile_key=f"l/{b}", yaml_key=f"y/{b}", packages=pkgs)
        batch.append(Append(f"build-{b}", [new_event(data)]))
        if len(batch) == 200:
            await store.append_many(batch)
            batch = []
    if batch:
        await store.append_many(batch)
    await store.pool.execute(f"SELECT setval('build_id_seq', {envs})")


def start_api(dsn: str, port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        CONDA_STORE_DATABASE_URL=dsn,
        CONDA_STORE_SECRET=SECRET,
        CONDA_STORE_DATA_DIR=str(data_dir),
        CONDA_STORE_LOG_LEVEL="WARNING",
    )
    code = (
        "import uvicorn; from services.api.app import create_app; "
        "from shared.settings import Settings; "
        f"uvicorn.run(create_app(Settings()), host='127.0.0.1', port={port}, "
        "log_level='warning', access_log=False)"
    )
    return subprocess.Popen([sys.executable, "-c", code], env=env)


def wait_up(url: str) -> None:
    for _ in range(200):
        try:
            if httpx.get(url + "/health").status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError("API did not start")


def run_wrk(url: str, token: str, duration: int, connections: int) -> tuple[float, float]:
    """(requests/s, p99 ms) from wrk --latency."""
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(4, connections)}",
            f"-c{connections}",
            f"-d{duration}s",
            "--latency",
            "-H",
            f"Authorization: Bearer {token}",
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    assert p99 is not None, out
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    if "Non-2xx" in out:
        raise RuntimeError(out)
    return rps, float(p99.group(1)) * scale


async def run_httpx(url: str, token: str, duration: int, connections: int) -> tuple[float, float]:
    latencies: list[float] = []
    deadline = time.perf_counter() + duration
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=connections)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            r = await client.get(url, headers=headers)
            r.raise_for_status()
            latencies.append((time.perf_counter() - t0) * 1000)

    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(connections)))
    p99 = statistics.quantiles(latencies, n=100)[98]
    return len(latencies) / duration, p99


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--envs", type=int, default=10_000)
    parser.add_argument("--packages", type=int, default=100_000)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="cs-bench-api-"))
    cluster = PostgresCluster(root / "pg", fast=True)
    cluster.start()
    api = None
    try:
        dsn = await cluster.create_database("bench")
        store = await EventStore.connect(dsn)
        t0 = time.perf_counter()
        await seed(store, args.envs, args.packages)
        count, seconds = await rebuild_projections(store)
        rows = await store.pool.fetchval("SELECT count(*) FROM build_packages")
        distinct = await store.pool.fetchval("SELECT count(*) FROM conda_packages")
        await store.pool.execute("ANALYZE")
        await store.close()
        print(
            f"seeded {args.envs} environments, {rows} package rows ({distinct} distinct) as "
            f"{count} events; replay {seconds:.1f}s, total {time.perf_counter() - t0:.1f}s"
        )
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        api = start_api(dsn, port, root / "data")
        wait_up(base)
        token = encode_token(
            AuthenticationToken(primary_namespace="bench", role_bindings={"*/*": ["admin"]}), SECRET
        )
        targets = {
            "GET /api/v1/environment/?size=100": "/api/v1/environment/?size=100",
            "GET /api/v1/environment/?size=100&page=50": "/api/v1/environment/?size=100&page=50",
            "GET /api/v1/package/?search=pkg0123&size=100": "/api/v1/package/?search=pkg0123",
            "GET /api/v1/package/?search=lib&distinct_on=name": (
                "/api/v1/package/?search=pkg01&distinct_on=name&size=100"
            ),
        }
        tool = "wrk" if shutil.which("wrk") else "httpx"
        print(f"load: {tool}, {args.connections} connections, {args.duration}s per target")
        for label, path in targets.items():
            async with httpx.AsyncClient() as check:
                r = await check.get(base + path, headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 200, r.text
            if tool == "wrk":
                rps, p99 = run_wrk(base + path, token, args.duration, args.connections)
            else:
                rps, p99 = await run_httpx(base + path, token, args.duration, args.connections)
            verdict = "ok" if p99 < 50 else "ABOVE TARGET"
            count = r.json()["count"]
            print(f"{label:50s} {rps:7.0f} req/s  p99 {p99:6.1f} ms  ({verdict}, count {count})")
    finally:
        if api is not None:
            api.terminate()
            api.wait(10)
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
