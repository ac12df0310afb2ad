"""Registry benchmark: blob pull throughput and manifest HEAD latency against Debian's
``docker-registry`` (distribution 2.8) serving the same image.

The image (python + numpy from the realistic channel, ~40 MB of layers) is built by the
registry's own builder, then copied into a docker-registry started with its own config on a
free loopback port (filesystem storage in a temp dir). Each round pulls the whole image with
``skopeo copy docker://... dir:...`` from both registries, alternating; then HEAD latency is
measured on ``/v2/<name>/manifests/latest`` with one keep-alive client.

    PYTHONPATH=. python tests/bench/bench_registry.py [--rounds 5] [--heads 300]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from shared.artifacts import LocalArtifactStore
from shared.embedded.nats import NatsServer
from shared.embedded.postgres import PostgresCluster
from shared.eventstore import EventStore
from shared.settings import Settings
from tests.channels.realistic import build_realistic_channel
from tests.channels.server import ChannelServer
from tests.harness.fixtures_stack import Stack
from tests.harness.reference_registry import start_reference_registry
from tests.integration.test_registry import serve_registry
from tests.integration.test_registry_support import (
    run,
    skopeo,
    solve_lockfile,
    submit_packed,
    wait_image,
)

IMAGE = "default/bench"
ACCEPT = "application/vnd.oci.image.manifest.v1+json"


async def pull(host: str, out: Path) -> float:
    shutil.rmtree(out, ignore_errors=True)
    started = time.perf_counter()
    result = await run(
        *skopeo("copy", "--src-tls-verify=false", f"docker://{host}/{IMAGE}:latest", f"dir:{out}")
    )
    elapsed = time.perf_counter() - started
    if result.code != 0:
        raise RuntimeError(result.err)
    return elapsed


async def head_latency(host: str, count: int) -> list[float]:
    times = []
    async with httpx.AsyncClient(base_url=f"http://{host}") as client:
        url = f"/v2/{IMAGE}/manifests/latest"
        await client.head(url, headers={"Accept": ACCEPT})
        for _ in range(count):
            started = time.perf_counter()
            response = await client.head(url, headers={"Accept": ACCEPT})
            times.append(time.perf_counter() - started)
            response.raise_for_status()
    return times


def blob_bytes(out: Path) -> int:
    return sum(p.stat().st_size for p in out.iterdir() if len(p.name) == 64)


async def main(rounds: int, heads: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-registry-"))
    cluster = PostgresCluster(tmp / "pg" / "data", fast=True)
    cluster.start()
    nats = NatsServer(tmp / "nats")
    nats.start()
    channel_dir = build_realistic_channel(tmp / "channel")
    reference, ref_host = start_reference_registry(tmp / "reference")
    try:
        with ChannelServer(channel_dir) as channel:
            settings = Settings(
                data_dir=tmp / "data",
                database_url=await cluster.create_database("bench"),
                nats_url=nats.url,
            )
            store = await EventStore.connect(settings.database_url or "")
            artifacts = LocalArtifactStore(tmp / "artifacts", secret=b"bench" * 8, fsync=False)
            stack = await Stack(store, settings).start()
            try:
                async with serve_registry(stack, settings, artifacts) as served:
                    lockfile = await solve_lockfile(
                        channel.url, ["python", "numpy"], tmp / "gateway"
                    )
                    build_id = await submit_packed(
                        store, artifacts, "default", "bench", channel.url, ["numpy"], lockfile
                    )
                    await wait_image(store, build_id, timeout=300)
                    await stack.projected()
                    copied = await run(
                        *skopeo(
                            "copy",
                            "--src-tls-verify=false",
                            "--dest-tls-verify=false",
                            f"docker://{served.host}/{IMAGE}:latest",
                            f"docker://{ref_host}/{IMAGE}:latest",
                        )
                    )
                    if copied.code != 0:
                        raise RuntimeError(copied.err)
                    await report(served.host, ref_host, tmp, rounds, heads)
            finally:
                await stack.stop()
                await store.close()
    finally:
        reference.terminate()
        reference.wait()
        nats.stop()
        cluster.stop()
        shutil.rmtree(tmp, ignore_errors=True)
        await asyncio.sleep(0.05)


async def report(ours: str, ref: str, tmp: Path, rounds: int, heads: int) -> None:
    timings: dict[str, list[float]] = {"ours": [], "reference": []}
    sizes: dict[str, int] = {}
    for _ in range(rounds):
        for label, host in (("ours", ours), ("reference", ref)):
            out = tmp / f"pull-{label}"
            timings[label].append(await pull(host, out))
            sizes[label] = blob_bytes(out)
    print(f"image: {sizes['ours'] / 1e6:.1f} MB of blobs ({rounds} pulls each, median)")
    rates = {}
    for label in ("ours", "reference"):
        median = statistics.median(timings[label])
        rates[label] = sizes[label] / median / 1e6
        print(f"  skopeo copy {label:<9}: {median * 1000:7.1f} ms  {rates[label]:7.1f} MB/s")
    print(f"  throughput ratio ours/reference: {rates['ours'] / rates['reference']:.2f}x")
    lat = {}
    for label, host in (("ours", ours), ("reference", ref)):
        times = await head_latency(host, heads)
        lat[label] = statistics.median(times)
        p95 = statistics.quantiles(times, n=20)[-1]
        ms = f"median {lat[label] * 1000:.2f} ms  p95 {p95 * 1000:.2f} ms"
        print(f"  manifest HEAD {label:<9}: {ms}")
    print(f"  HEAD latency ratio reference/ours: {lat['reference'] / lat['ours']:.2f}x")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--heads", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.heads))
