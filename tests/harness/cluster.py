"""Many machines on one: the multi-machine topology as real processes, for fault tests and
benchmarks.

- a NATS JetStream cluster of three ``nats-server``s joined by routes, the events stream and
  every durable consumer replicated on all three (``CONDA_STORE_NATS_REPLICAS=3``), clients given
  all three URLs;
- one Postgres database and one S3 bucket (the session's SeaweedFS);
- ``conda-store-server <service>`` processes, each with its own data directory as if on its own
  machine: two APIs and two registries behind haproxy, two solvers, two packers, and relay and
  projector as a leader and a standby each.

Every process connects to Postgres with ``application_name`` = its name, so the leader of a
role is found in ``pg_locks``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import zlib
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

import asyncpg
import httpx
import nats.errors
import nats.js.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from shared.auth import AuthenticationToken, encode_token
from shared.bus.jetstream import connect_nats, ensure_stream
from shared.embedded.nats import NatsServer, cluster_url, nats_cluster
from shared.embedded.ports import free_port
from shared.embedded.processes import stop_child
from shared.settings import Settings
from tests.harness.haproxy import LoadBalancer
from tests.harness.s3server import S3Server

ROOT = Path(__file__).resolve().parents[2]
SECRET = "cluster-secret-0123456789abcdef0123456789abcdef"
TERMINAL_EVENTS = ("Packed", "BuildFailed", "BuildCanceled")
IMAGE_EVENTS = ("ImagePushed", "ImageFailed")

# the settings field each service listens on (its API or its health endpoint)
PORT_FIELDS = {
    "api": "api_port",
    "registry": "registry_port",
    "solver": "solver_health_port",
    "packer": "packer_health_port",
    "relay": "relay_health_port",
    "projector": "projector_health_port",
}
BEHIND_LOAD_BALANCER = ("api", "registry")
TWO_OF_EACH = {service: 2 for service in PORT_FIELDS}


def admin_token() -> str:
    return encode_token(
        AuthenticationToken(primary_namespace="admin", role_bindings={"*/*": ["admin"]}), SECRET
    )


def _clean_environment() -> dict[str, str]:
    """The test runner's environment without any conda-store setting it may carry."""
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("CONDA_STORE_") and k not in ("NATS_URL", "DATABASE_URL")
    }


@dataclass
class ServiceProcess:
    """One ``conda-store-server <service>`` process, as on a machine of its own."""

    name: str
    service: str
    port: int
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def health_url(self) -> str:
        path = "/health" if self.service in BEHIND_LOAD_BALANCER else "/"
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} was never started"
        return self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        assert not self.alive, f"{self.name} is already running"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "services.cli", self.service],
                env=self.env,
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C in pytest reaches the harness, not us
            )
        self.starts += 1

    def signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """SIGKILL: the machine is gone, nothing is cleaned up."""
        self.signal(signal.SIGKILL)
        assert self.proc is not None
        self.proc.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        if not self.alive:
            return
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
        stop_child(self.proc, timeout)

    async def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                assert self.alive, f"{self.name} exited:\n{self.log_tail()}"
                try:
                    if (await client.get(self.health_url)).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.name} not healthy:\n{self.log_tail()}")
                await asyncio.sleep(0.2)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])


@dataclass
class Cluster:
    """The topology: start it, find and hurt its members, check what it recorded."""

    root: Path
    database_url: str
    s3: S3Server
    bucket: str
    counts: Mapping[str, int] = field(default_factory=lambda: dict(TWO_OF_EACH))
    settings: Mapping[str, str] = field(default_factory=dict)
    nats: list[NatsServer] = field(init=False)
    processes: dict[str, ServiceProcess] = field(init=False, default_factory=dict)
    lb: LoadBalancer = field(init=False)

    def __post_init__(self) -> None:
        self.nats = nats_cluster(self.root / "nats", size=3)
        for service, count in self.counts.items():
            for i in range(1, count + 1):
                name = f"{service}-{i}"
                self.processes[name] = ServiceProcess(
                    name, service, free_port(), {}, self.root / "logs" / f"{name}.log"
                )
        self.lb = LoadBalancer(
            self.root / "haproxy",
            {
                service: [(p.name, p.port) for p in self.of(service)]
                for service in BEHIND_LOAD_BALANCER
                if self.of(service)
            },
        )
        for proc in self.processes.values():
            proc.env = self._env(proc)

    # --- addresses ---------------------------------------------------------------------------

    @property
    def nats_url(self) -> str:
        return cluster_url(self.nats)

    @property
    def api_url(self) -> str:
        return self.lb.url("api")

    @property
    def registry_url(self) -> str:
        return self.lb.url("registry")

    def of(self, service: str) -> list[ServiceProcess]:
        return [p for p in self.processes.values() if p.service == service]

    def by_pid(self, pid: int) -> ServiceProcess:
        return next(p for p in self.processes.values() if p.alive and p.pid == pid)

    def node_named(self, server_name: str) -> NatsServer:
        return next(n for n in self.nats if n.cluster and n.cluster.server_name == server_name)

    def settings_for_checks(self) -> Settings:
        return Settings(nats_url=self.nats_url, nats_replicas=len(self.nats))

    def _env(self, proc: ServiceProcess) -> dict[str, str]:
        separator = "&" if "?" in self.database_url else "?"
        dsn = f"{self.database_url}{separator}{urlencode({'application_name': proc.name})}"
        data_dir = self.root / "machines" / proc.name
        return {
            **_clean_environment(),
            "CONDA_STORE_DATABASE_URL": dsn,
            "CONDA_STORE_NATS_URL": self.nats_url,
            "CONDA_STORE_NATS_REPLICAS": str(len(self.nats)),
            "CONDA_STORE_DATA_DIR": str(data_dir),
            "CONDA_STORE_ARTIFACT_BACKEND": "s3",
            "CONDA_STORE_S3_ENDPOINT": self.s3.endpoint,
            "CONDA_STORE_S3_ACCESS_KEY": self.s3.access_key,
            "CONDA_STORE_S3_SECRET_KEY": self.s3.secret_key,
            "CONDA_STORE_S3_REGION": self.s3.region,
            "CONDA_STORE_S3_BUCKET": self.bucket,
            "CONDA_STORE_SECRET": SECRET,
            "CONDA_STORE_BIND_HOST": "127.0.0.1",
            f"CONDA_STORE_{PORT_FIELDS[proc.service].upper()}": str(proc.port),
            **({"CONDA_STORE_EXTERNAL_URL": self.api_url} if "api" in self.lb.ports else {}),
            **(
                {"CONDA_STORE_REGISTRY_EXTERNAL_URL": self.lb.address("registry")}
                if "registry" in self.lb.ports
                else {}
            ),
            "CONDA_STORE_ENABLE_UI": "false",
            "CONDA_STORE_LOG_FORMAT": "json",
            **self.settings,
        }

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        for node in self.nats:
            node.start()
        await self.wait_stream_replicated()
        for proc in self.processes.values():
            proc.start()
        await asyncio.gather(*(p.wait_healthy() for p in self.processes.values()))
        self.lb.start()
        for role in ("relay", "projector"):
            if self.of(role):
                await self.leader(role)

    def stop(self) -> None:
        self.lb.stop()
        with ThreadPoolExecutor(len(self.processes)) as pool:  # each may take a few seconds
            list(pool.map(ServiceProcess.stop, self.processes.values()))
        for node in self.nats:
            node.stop()

    async def restart(self, proc: ServiceProcess) -> None:
        """Bring a killed process back (same name, port and data directory)."""
        proc.stop()
        proc.start()
        await proc.wait_healthy()

    async def wait_stream_replicated(self, timeout: float = 60.0) -> None:
        """Until the events stream exists with a current replica on every node."""
        settings = self.settings_for_checks()
        nc = await connect_nats(self.nats_url, "cluster-harness")
        try:
            js = nc.jetstream(timeout=5)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    await ensure_stream(js, settings)
                    info = await js.stream_info(settings.nats_stream)
                    peers = (info.cluster.replicas or []) if info.cluster else []
                    if info.cluster and info.cluster.leader and len(peers) == len(self.nats) - 1:
                        if all(p.current and not p.offline for p in peers):
                            return
                except Exception as exc:  # no JetStream quorum yet
                    last = repr(exc)
                else:
                    last = f"stream cluster {info.cluster}"
                if time.monotonic() > deadline:
                    raise TimeoutError(f"events stream not replicated: {last}")
                await asyncio.sleep(0.3)
        finally:
            await nc.close()

    async def stream_leader(self) -> NatsServer:
        settings = self.settings_for_checks()
        nc = await connect_nats(self.nats_url, "cluster-harness")
        try:
            info = await nc.jetstream(timeout=5).stream_info(settings.nats_stream)
        finally:
            await nc.close()
        assert info.cluster is not None and info.cluster.leader
        return self.node_named(info.cluster.leader)

    # --- Postgres ----------------------------------------------------------------------------

    async def db(self) -> asyncpg.Connection:
        return await asyncpg.connect(self.database_url)

    async def leader(
        self, role: str, other_than: object = None, timeout: float = 60.0
    ) -> ServiceProcess:
        """The process holding ``role``'s lock (waits until one other than ``other_than`` does)."""
        key = zlib.crc32(role.encode())
        conn = await self.db()
        try:
            deadline = time.monotonic() + timeout
            while True:
                name = await conn.fetchval(
                    "SELECT a.application_name FROM pg_locks l "
                    "JOIN pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted "
                    "AND l.classid = 0 AND l.objid = $1::bigint::oid",
                    key,
                )
                if name in self.processes and self.processes[name] is not other_than:
                    return self.processes[name]
                if time.monotonic() > deadline:
                    raise TimeoutError(f"no {role} leader")
                await asyncio.sleep(0.2)
        finally:
            await conn.close()

    async def build_outcomes(self, build_ids: list[int]) -> dict[int, dict[str, int]]:
        """Per build, how many terminal and image events the log holds."""
        conn = await self.db()
        try:
            rows = await conn.fetch(
                "SELECT stream, type, count(*) AS n FROM events "
                "WHERE stream = ANY($1::text[]) GROUP BY stream, type",
                [f"build-{b}" for b in build_ids],
            )
        finally:
            await conn.close()
        outcomes: dict[int, dict[str, int]] = {b: {} for b in build_ids}
        for row in rows:
            outcomes[int(row["stream"].removeprefix("build-"))][row["type"]] = row["n"]
        return outcomes

    async def logged_event_ids(self) -> tuple[list[str], int]:
        """Every event id in Postgres, and the relay's saved position."""
        conn = await self.db()
        try:
            ids = [str(r[0]) for r in await conn.fetch("SELECT event_id FROM events")]
            position = await conn.fetchval("SELECT position FROM positions WHERE name = 'relay'")
            last = await conn.fetchval("SELECT coalesce(max(global_position), 0) FROM events")
        finally:
            await conn.close()
        return ids, int(last) - int(position or 0)

    async def streamed_event_ids(self, attempts: int = 5) -> list[str]:
        """The ``Nats-Msg-Id`` (event id) of every message in the events stream.

        Read with a fresh ephemeral consumer; one placed on a node that is still rejoining
        after a healed fault answers 503 for a moment, so the read starts over."""
        for attempt in range(1, attempts + 1):
            try:
                return await self._read_stream_ids()
            except (nats.js.errors.ServiceUnavailableError, nats.errors.TimeoutError):
                if attempt == attempts:
                    raise
                await asyncio.sleep(2)
        raise AssertionError("unreachable")

    async def _read_stream_ids(self) -> list[str]:
        settings = self.settings_for_checks()
        nc = await connect_nats(self.nats_url, "cluster-harness")
        try:
            js = nc.jetstream(timeout=10)
            total = (await js.stream_info(settings.nats_stream)).state.messages
            sub = await js.pull_subscribe(
                f"{settings.subject_prefix}.events.>",
                stream=settings.nats_stream,
                config=ConsumerConfig(
                    ack_policy=AckPolicy.NONE,
                    deliver_policy=DeliverPolicy.ALL,
                    mem_storage=True,
                    num_replicas=1,
                    inactive_threshold=30,
                ),
            )
            ids: list[str] = []
            while len(ids) < total:
                for msg in await sub.fetch(500, timeout=5):
                    ids.append((msg.headers or {}).get("Nats-Msg-Id", ""))
            await sub.unsubscribe()
            return ids
        finally:
            await nc.close()

    # --- the API, through the load balancer ---------------------------------------------------

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.api_url,
            headers={"Authorization": f"Bearer {admin_token()}"},
            timeout=60,
        )
