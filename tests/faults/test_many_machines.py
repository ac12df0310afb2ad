"""Many machines: kill any one process, or one NATS node, while a batch of real builds runs.

One cluster (see ``tests.harness.cluster``) serves every case in turn: each case submits half a
batch through haproxy, strikes, submits the other half, and checks what a user and an operator
would: every build COMPLETED with exactly one terminal event and one image, the Postgres log and
the JetStream stream holding the same events, the API and the registry answering throughout,
and a standby leading where a leader was hit. Then the victim is healed for the next case.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import signal
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from shared.embedded.nats import NatsServer
from shared.embedded.postgres import PostgresCluster
from tests.channels.batch import batch_package, build_batch_channel
from tests.channels.server import ChannelServer, ServedChannel
from tests.harness.cluster import (
    IMAGE_EVENTS,
    TERMINAL_EVENTS,
    Cluster,
    ServiceProcess,
    admin_token,
)
from tests.harness.fixtures_s3 import _drop_bucket
from tests.harness.s3server import S3Server

pytestmark = pytest.mark.slow

BATCH = 4  # builds per case: half before the strike, half after
CASES = 9
SETTINGS = {
    "CONDA_STORE_CONSUMER_ACK_WAIT_S": "6",  # a killed worker's build is redelivered after this
    "CONDA_STORE_LEADER_LEASE_S": "3",  # a paused leader loses its role after this
    "CONDA_STORE_SOLVER_TEST_DELAY_S": "1.5",  # windows in which a solver or packer is hit
    "CONDA_STORE_PACKER_TEST_DELAY_S": "2",
    "CONDA_STORE_REGISTRY_TEST_DELAY_S": "2",
}
DONE_TIMEOUT_S = 180.0


@pytest.fixture(scope="module")
def batch_channel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedChannel]:
    path = build_batch_channel(tmp_path_factory.mktemp("batch") / "channel", (CASES + 1) * BATCH)
    with ChannelServer(path) as server:
        yield ServedChannel(path=path, url=server.url, server=server)


@pytest.fixture(scope="module")
async def cluster(
    pg_cluster: PostgresCluster, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Cluster]:
    bucket = f"cluster-{uuid.uuid4().hex[:12]}"
    await asyncio.to_thread(s3_server.client().make_bucket, bucket)
    topology = Cluster(
        tmp_path_factory.mktemp("cluster"),
        await pg_cluster.create_database(f"cluster_{uuid.uuid4().hex[:8]}"),
        s3_server,
        bucket,
        settings=SETTINGS,
    )
    try:
        await topology.start()
        yield topology
    finally:
        topology.stop()
        await asyncio.to_thread(_drop_bucket, s3_server, bucket)


# --- a batch of builds ---------------------------------------------------------------------

_packages = itertools.count()


async def submit(api: httpx.AsyncClient, channel: ServedChannel) -> int:
    i = next(_packages)
    spec = f"name: env-{i}\nchannels: [{channel.url}]\ndependencies: [{batch_package(i)}]\n"
    r = await api.post("/api/v1/specification/", json={"namespace": "mm", "specification": spec})
    assert r.status_code == 200, r.text
    return int(r.json()["data"]["build_id"])


async def wait_done(cluster: Cluster, api: httpx.AsyncClient, ids: list[int]) -> dict[int, str]:
    """Until every build is terminal in the read model and has its image outcome."""
    deadline = time.monotonic() + DONE_TIMEOUT_S
    while True:
        statuses = {}
        for build_id in ids:
            r = await api.get(f"/api/v1/build/{build_id}/")
            statuses[build_id] = r.json()["data"]["status"] if r.status_code == 200 else r.text
        outcomes = await cluster.build_outcomes(ids)
        imaged = all(sum(o.get(t, 0) for t in IMAGE_EVENTS) for o in outcomes.values())
        if imaged and all(s in ("COMPLETED", "FAILED", "CANCELED") for s in statuses.values()):
            return statuses
        if time.monotonic() > deadline:
            raise TimeoutError(f"builds not done: {statuses} {outcomes}")
        await asyncio.sleep(0.5)


@dataclass
class Watch:
    """Reads through the load balancer all along: the API's list and the registry's catalog."""

    cluster: Cluster
    answered: int = 0
    failures: list[str] = field(default_factory=list)

    async def run(self) -> None:
        token = admin_token()
        async with httpx.AsyncClient(timeout=30) as client:
            while True:
                for url, headers in (
                    (f"{self.cluster.api_url}/api/v1/environment/?size=5", {}),
                    (f"{self.cluster.registry_url}/v2/_catalog", {}),
                ):
                    try:
                        r = await client.get(
                            url, headers={"Authorization": f"Bearer {token}", **headers}
                        )
                        if r.status_code == 200:
                            self.answered += 1
                        else:
                            self.failures.append(f"{url}: {r.status_code} {r.text[:200]}")
                    except httpx.HTTPError as exc:
                        self.failures.append(f"{url}: {exc!r}")
                await asyncio.sleep(0.2)


@asynccontextmanager
async def watching(cluster: Cluster) -> AsyncIterator[Watch]:
    watch = Watch(cluster)
    task = asyncio.create_task(watch.run())
    try:
        yield watch
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


# --- finding a victim ----------------------------------------------------------------------


def worker_line(verb: str) -> re.Pattern[str]:
    """``solving build 7 (attempt 1) on host:1234``, ``packing build 7 (attempt 1 of 5) on …``"""
    return re.compile(rf"{verb} build \d+ \(attempt 1\b[^)]*\) on \S+:(\d+)")


async def build_log_lines(cluster: Cluster, ids: list[int]) -> list[str]:
    conn = await cluster.db()
    try:
        rows = await conn.fetch(
            "SELECT line FROM build_logs WHERE build_id = ANY($1::bigint[]) ORDER BY seq", ids
        )
    finally:
        await conn.close()
    return [r["line"] for r in rows]


async def busy_worker(cluster: Cluster, ids: list[int], verb: str) -> ServiceProcess:
    """The process that logged ``<verb> build N (attempt 1) on host:pid`` for a build of ours."""
    pattern = worker_line(verb)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for line in await build_log_lines(cluster, ids):
            if match := pattern.search(line):
                return cluster.by_pid(int(match.group(1)))
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no worker was {verb} builds {ids}")


async def busy_registry(cluster: Cluster, ids: list[int]) -> ServiceProcess:
    """A registry that started the image of one of our builds and has not pushed it yet."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        outcomes = await cluster.build_outcomes(ids)
        pending = {b for b, o in outcomes.items() if o.get("Packed") and not o.get("ImagePushed")}
        for proc in cluster.of("registry"):
            for line in proc.log_text().splitlines():
                if '"building image"' in line and json.loads(line)["build_id"] in pending:
                    return proc
        await asyncio.sleep(0.1)
    raise TimeoutError(f"no registry was seen building an image of {ids}")


# --- the faults ----------------------------------------------------------------------------


@dataclass
class Strike:
    """What was hit, and how to heal it after the batch."""

    victim: ServiceProcess | NatsServer
    heal: Callable[[], Awaitable[None]]
    leader_of: str | None = None


def killed(cluster: Cluster, proc: ServiceProcess, leader_of: str | None = None) -> Strike:
    proc.kill()
    return Strike(proc, lambda: cluster.restart(proc), leader_of)


async def kill_api(cluster: Cluster, ids: list[int]) -> Strike:
    return killed(cluster, cluster.of("api")[0])


async def kill_solver(cluster: Cluster, ids: list[int]) -> Strike:
    return killed(cluster, await busy_worker(cluster, ids, "solving"))


async def kill_packer(cluster: Cluster, ids: list[int]) -> Strike:
    return killed(cluster, await busy_worker(cluster, ids, "packing"))


async def kill_registry(cluster: Cluster, ids: list[int]) -> Strike:
    return killed(cluster, await busy_registry(cluster, ids))


def kill_leader(role: str) -> Callable[[Cluster, list[int]], Awaitable[Strike]]:
    async def strike(cluster: Cluster, ids: list[int]) -> Strike:
        return killed(cluster, await cluster.leader(role), leader_of=role)

    return strike


def pause_leader(role: str) -> Callable[[Cluster, list[int]], Awaitable[Strike]]:
    async def strike(cluster: Cluster, ids: list[int]) -> Strike:
        proc = await cluster.leader(role)
        proc.signal(signal.SIGSTOP)

        async def resume() -> None:
            proc.signal(signal.SIGCONT)  # it wakes up deposed: it must stand by, not write
            await wait_for_log(proc, '"standing by"')

        return Strike(proc, resume, leader_of=role)

    return strike


async def kill_nats_node(cluster: Cluster, ids: list[int]) -> Strike:
    node = await cluster.stream_leader()  # the node the stream's writes go through
    assert node.proc is not None
    node.proc.kill()
    node.proc.wait(10)

    async def heal() -> None:
        node.start()
        await cluster.wait_stream_replicated()

    return Strike(node, heal)


async def wait_for_log(proc: ServiceProcess, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in proc.log_text():
        assert time.monotonic() < deadline, f"{proc.name} never logged {text!r}"
        await asyncio.sleep(0.2)


FAULTS = {
    "api-killed": kill_api,
    "solver-killed": kill_solver,
    "packer-killed": kill_packer,
    "registry-killed": kill_registry,
    "relay-leader-killed": kill_leader("relay"),
    "relay-leader-paused": pause_leader("relay"),
    "projector-leader-killed": kill_leader("projector"),
    "projector-leader-paused": pause_leader("projector"),
    "nats-node-killed": kill_nats_node,
}
assert len(FAULTS) == CASES


@pytest.mark.parametrize("fault", list(FAULTS))
async def test_builds_complete_once_and_nothing_is_lost_when_one_member_fails(
    cluster: Cluster, batch_channel: ServedChannel, fault: str
) -> None:
    strike: Strike | None = None
    try:
        async with cluster.client() as api, watching(cluster) as watch:
            ids = [await submit(api, batch_channel) for _ in range(BATCH // 2)]
            strike = await FAULTS[fault](cluster, ids)
            struck_at = time.monotonic()
            if strike.leader_of is not None:
                successor = await cluster.leader(strike.leader_of, other_than=strike.victim)
                print(
                    f"{fault}: {successor.name} took over in {time.monotonic() - struck_at:.1f} s"
                )
            ids += [await submit(api, batch_channel) for _ in range(BATCH - BATCH // 2)]
            statuses = await wait_done(cluster, api, ids)
    finally:
        if strike is not None:
            await strike.heal()  # the next case starts with the whole topology

    assert statuses == {b: "COMPLETED" for b in ids}
    outcomes = await cluster.build_outcomes(ids)
    for build_id, counts in outcomes.items():
        assert sum(counts.get(t, 0) for t in TERMINAL_EVENTS) == 1, (build_id, counts)
        assert counts.get("Packed") == 1 and counts.get("ImagePushed") == 1, (build_id, counts)

    logged, relay_lag = await cluster.logged_event_ids()
    deadline = time.monotonic() + 60
    while relay_lag:  # the relay catches up with whatever was appended last
        assert time.monotonic() < deadline, f"relay {relay_lag} events behind"
        await asyncio.sleep(0.2)
        logged, relay_lag = await cluster.logged_event_ids()
    streamed = await cluster.streamed_event_ids()
    assert sorted(streamed) == sorted(logged), "the Postgres log and the stream disagree"

    assert watch.answered > 0 and not watch.failures, watch.failures[:5]
    if strike.leader_of is not None:  # still the leader once the victim is back
        assert await cluster.leader(strike.leader_of) is successor
