"""UI benchmark: server-side render time of the main pages with 1,000 environments.

Seeds the event log (namespaces of 50 environments, each with a completed build carrying 40
packages; one environment with 20 builds), projects it, then serves the real API gateway and
the ui under uvicorn on loopback and times GET requests to the ui (which makes its own API
calls). The target is < 200 ms per page.

    python tests/bench/bench_ui.py [--environments 1000] [--requests 30]
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

TARGET_MS = 200.0
PER_NAMESPACE = 50
PACKAGES = [
    PackageRef(name=f"package-{i:02d}", version=f"1.{i}.0", build="h0_0", channel="conda-forge")
    for i in range(40)
]


def build_events(build_id: int, namespace: str, name: str) -> list[NewEvent]:
    """What a completed build leaves in the log: submitted, started, solved, packed."""
    key = f"{build_id:08x}-1700000000-{build_id}-{name}"
    spec = {"name": name, "channels": ["conda-forge"], "dependencies": ["python", "numpy"]}
    return [
        event(
            SpecSubmitted(
                build_id=build_id,
                namespace=namespace,
                environment=name,
                specification=spec,
                sha256=f"{build_id:064x}",
                build_key=key,
            )
        ),
        event(BuildStarted(build_id=build_id)),
        event(
            Solved(
                build_id=build_id,
                lockfile_key=f"lockfile/{key}.yml",
                yaml_key=f"yaml/{key}.yml",
                packages=PACKAGES,
            )
        ),
        event(
            Packed(
                build_id=build_id,
                archive_key=f"archive/{key}.tar.gz",
                logs_key=f"logs/{key}.log",
                size=50_000_000 + build_id,
                packages=PACKAGES,
            )
        ),
    ]


async def seed(store: EventStore, environments: int) -> tuple[str, str, int]:
    """Append the history and project it; returns (namespace, name, build id) to look at."""
    streams: list[tuple[str, list[NewEvent]]] = []
    build_id = 0
    for i in range(environments):
        namespace, name = f"team-{i // PER_NAMESPACE:02d}", f"env-{i:04d}"
        for _ in range(20 if i == 0 else 1):
            build_id += 1
            streams.append((f"build-{build_id}", build_events(build_id, namespace, name)))
    sem = asyncio.Semaphore(8)

    async def append(stream: str, events: list[NewEvent]) -> None:
        async with sem:
            await store.append(stream, events)

    await asyncio.gather(*(append(s, e) for s, e in streams))
    count, seconds = await rebuild_projections(store)
    print(
        f"seeded {environments} environments, {build_id} builds: {count} events "
        f"projected in {seconds:.1f}s"
    )
    return "team-00", "env-0000", build_id


def server_ms(response: httpx.Response) -> float:
    """The ui's own ``Server-Timing: render;dur=…`` figure."""
    timing = response.headers.get("server-timing", "")
    return float(timing.partition("dur=")[2] or "nan")


async def time_page(
    client: httpx.AsyncClient, path: str, n: int
) -> tuple[list[float], list[float]]:
    """(server-side render ms, client round-trip ms) per request."""
    response = await client.get(path)  # warm-up, and proof the page renders
    assert response.status_code == 200, (path, response.status_code, response.text[:300])
    server, total = [], []
    for _ in range(n):
        start = time.perf_counter()
        response = await client.get(path)
        total.append((time.perf_counter() - start) * 1000)
        assert response.status_code == 200
        server.append(server_ms(response))
    return server, total


async def main(environments: int, requests: int) -> int:
    from services.api.app import create_app as create_api
    from services.ui.app import create_app as create_ui

    root = Path(tempfile.mkdtemp(prefix="cs-bench-ui-"))
    cluster = PostgresCluster(root / "pg", fast=True)
    cluster.start()
    served = []
    try:
        dsn = await cluster.create_database("bench_ui")
        store = await EventStore.connect(dsn, max_size=20)
        namespace, name, last_build = await seed(store, environments)
        api_port, ui_port = free_port(), free_port()
        settings = Settings(
            data_dir=root / "data",
            database_url=dsn,
            api_port=api_port,
            ui_port=ui_port,
            api_url=f"http://127.0.0.1:{api_port}",
            ui_url=f"http://127.0.0.1:{ui_port}",
            secret="bench-secret-of-a-decent-length-0123456789",
        )
        served.append(await serve_healthy(create_api(settings), api_port))
        served.append(await serve_healthy(create_ui(settings), ui_port))
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ui_port}", timeout=30) as ui:
            login = await ui.post("/login/", json={"username": "bench", "password": "password"})
            assert login.status_code == 200, login.text
            pages = {
                "/ (first page of 100)": "/",
                "/?page=10": "/?page=10",
                "/?search=env-09": "/?search=env-09",
                "/environment/<ns>/<name>/ (20 builds)": f"/environment/{namespace}/{name}/",
                f"/build/{last_build}/ (40 packages)": f"/build/{last_build}/",
                "/namespace/": "/namespace/",
                "/create/": "/create/",
                "/user/": "/user/",
                "/setting/": "/setting/",
                "/setting/<ns>/<name>/": f"/setting/{namespace}/{name}/",
            }
            print(
                f"\n{'page (server-side render, ms)':48} {'p50':>7} {'p95':>7} {'max':>7}"
                f" {'round trip p50':>15}"
            )
            worst = 0.0
            for label, path in pages.items():
                server, total = await time_page(ui, path, requests)
                server.sort()
                p50 = statistics.median(server)
                p95 = server[min(len(server) - 1, int(len(server) * 0.95))]
                worst = max(worst, p95)
                print(
                    f"{label:48} {p50:7.1f} {p95:7.1f} {server[-1]:7.1f}"
                    f" {statistics.median(total):15.1f}"
                )
        verdict = "OK" if worst < TARGET_MS else "SLOWER THAN TARGET"
        print(f"\nworst p95 {worst:.1f} ms vs target {TARGET_MS:.0f} ms: {verdict}")
        await store.close()
        return 0 if worst < TARGET_MS else 1
    finally:
        for task, stop in reversed(served):
            stop.set()
            await asyncio.wait_for(task, 10)
        cluster.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--environments", type=int, default=1000)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    raise SystemExit(asyncio.run(main(args.environments, args.requests)))
