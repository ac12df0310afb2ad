"""Webhook delivery latency under 10 builds at once, against the real ``up`` stack.

Registers a webhook for every event to a local receiver (and, unless ``--no-stalled``, a
second one whose receiver never answers within its timeout, to show it costs the first
nothing), submits ``--builds`` builds of the tiny channel at once, and once every build is
terminal and every event after the registration has arrived, prints the latency from each
event's ``recorded_at`` to the moment the receiver read it: p50, p99, max. The baseline, side
by side: the same events as a JetStream subscriber gets them from the relay.

    python -m tests.bench.bench_webhooks [--builds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from tests.harness.receiver import Receiver


def percentiles(values: list[float]) -> str:
    if not values:
        return "no samples"
    ms = sorted(v * 1000 for v in values)
    cuts = statistics.quantiles(ms, n=100, method="inclusive") if len(ms) > 1 else [ms[0]] * 99
    return f"p50 {cuts[49]:7.1f} ms   p99 {cuts[98]:7.1f} ms   max {ms[-1]:7.1f} ms   n={len(ms)}"


def recorded_at(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(event["recorded_at"].replace("Z", "+00:00")).timestamp()


async def nats_baseline(nats_url: str, seen: dict[int, float], ready: asyncio.Event) -> None:
    """An ordered JetStream consumer from now on: when each event reached a subscriber."""
    import nats
    from nats.js.api import DeliverPolicy

    nc = await nats.connect(nats_url.split(",")[0])
    try:
        js = nc.jetstream()

        async def got(msg: Any) -> None:
            seen[json.loads(msg.data)["global_position"]] = time.time()

        await js.subscribe(
            "condastore.events.>", cb=got, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW
        )
        ready.set()
        await asyncio.Event().wait()
    finally:
        await nc.close()


async def run(args: argparse.Namespace, api_url: str, nats_url: str, channel: str) -> None:
    async with httpx.AsyncClient(base_url=api_url, timeout=60) as client:
        r = await client.post("/login/", json={"username": "bench", "password": "password"})
        r.raise_for_status()
        token = (await client.post("/api/v1/token/")).json()["data"]["token"]
    headers = {"Authorization": f"Bearer {token}"}
    receiver, stalled = Receiver().start(), Receiver(mode="stall", stall_s=600).start()
    seen_nats: dict[int, float] = {}
    ready = asyncio.Event()
    baseline = asyncio.create_task(nats_baseline(nats_url, seen_nats, ready))
    await asyncio.wait_for(ready.wait(), 30)
    try:
        async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=120) as client:
            r = await client.post("/api/v1/webhook/", json={"url": receiver.url})
            r.raise_for_status()
            hook = r.json()["data"]
            if not args.no_stalled:
                r = await client.post("/api/v1/webhook/", json={"url": stalled.url, "timeout_s": 5})
                r.raise_for_status()
            started = time.monotonic()
            posts = [
                client.post(
                    "/api/v1/specification/",
                    json={
                        "namespace": "bench-hooks",
                        "specification": f"name: env-{i}\nchannels:\n  - {channel}\n"
                        "dependencies:\n  - libfoo\n",
                    },
                )
                for i in range(args.builds)
            ]
            ids = [r.json()["data"]["build_id"] for r in await asyncio.gather(*posts)]
            statuses: list[str] = []
            for build_id in ids:
                while True:
                    build = (await client.get(f"/api/v1/build/{build_id}/")).json()["data"]
                    if build["status"] in ("COMPLETED", "FAILED", "CANCELED"):
                        statuses.append(build["status"])
                        break
                    await asyncio.sleep(0.2)
            built_s = time.monotonic() - started
            events: list[dict[str, Any]] = []
            after = hook["registered_position"]
            while True:
                page = (await client.get("/api/v1/events/", params={"after": after})).json()
                events += page["data"]
                if not page["data"]:
                    break
                after = page["next_after"]
            wanted = {e["global_position"] for e in events}
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                got = {json.loads(r.body)["global_position"] for r in receiver.accepted}
                if wanted <= got:
                    break
                await asyncio.sleep(0.1)
    finally:
        baseline.cancel()
        receiver.stop()
        stalled.stop()
    by_position = {e["global_position"]: recorded_at(e) for e in events}
    arrived = {json.loads(r.body)["global_position"]: r.at for r in receiver.accepted}
    webhook = [arrived[p] - t for p, t in by_position.items() if p in arrived]
    nats_lat = [seen_nats[p] - t for p, t in by_position.items() if p in seen_nats]
    in_order = list(arrived) == sorted(arrived)
    print(f"{args.builds} builds at once, all terminal after {built_s:.1f}s: {statuses}")
    print(f"{len(events)} events recorded after the registration")
    print(f"stalled second webhook: {'no' if args.no_stalled else 'yes'}")
    print(f"webhook  recorded_at → receiver : {percentiles(webhook)}")
    print(f"baseline recorded_at → JetStream: {percentiles(nats_lat)}")
    print(f"delivered {len(arrived)}/{len(by_position)}, in log order: {in_order}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--builds", type=int, default=10)
    parser.add_argument("--no-stalled", action="store_true", help="no stalled second webhook")
    args = parser.parse_args()

    from tests.channels.server import ChannelServer
    from tests.channels.tiny import build_tiny_channel
    from tests.harness.embedded_stack import EmbeddedStack

    root = Path(tempfile.mkdtemp(prefix="cs-bench-hooks-")) / "ch"
    server = ChannelServer(build_tiny_channel(root))
    channel = server.start()
    stack = EmbeddedStack.start()
    try:
        asyncio.run(run(args, stack.api_url, stack.manifest["nats_url"], channel))
    finally:
        stack.close()
        server.stop()


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    main()
