"""The embedded single-machine stack: Postgres, NATS and every service as supervised children.

Data lives in ``data_dir`` (database cluster, JetStream store, artifacts, secret), so stopping
and starting again keeps everything, and a Postgres or nats-server that dies is started again
on the same port with the same data (the services reconnect by themselves). Ports that were
not set explicitly fall back to free ones when their default is taken, and
``data_dir/stack.json`` records what was chosen.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from shared.auth_store import jwt_secret
from shared.embedded.nats import NatsServer
from shared.embedded.ports import free_port, port_is_open
from shared.embedded.postgres import PostgresCluster
from shared.embedded.supervisor import Supervised, Supervisor
from shared.settings import Settings

SERVICE_ORDER = ("relay", "projector", "solver", "packer", "registry", "ui", "api")
PORT_FIELDS = (
    "api_port",
    "registry_port",
    "ui_port",
    "solver_health_port",
    "packer_health_port",
    "relay_health_port",
    "projector_health_port",
)


def _say(message: str) -> None:
    print(message, flush=True)


def choose_ports(settings: Settings) -> dict[str, int]:
    """Keep configured ports; replace defaults that something else already listens on."""
    chosen: dict[str, int] = {}
    for name in PORT_FIELDS:
        port = getattr(settings, name)
        explicit = f"CONDA_STORE_{name.upper()}" in os.environ
        if not explicit and port_is_open(settings.bind_host, port):
            new = free_port(settings.bind_host)
            _say(f"port {port} ({name}) is taken; using {new}")
            port = new
        chosen[name] = port
    return chosen


async def _prepare_database(dsn: str) -> None:
    from shared.eventstore import EventStore

    store = await EventStore.connect(dsn)
    await store.close()


class Child:
    """One service process (``python -m services.cli <name>``), supervised."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # owned by the child process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "services.cli", self.name], env=self.env, stdout=log, stderr=log
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def describe_exit(self) -> str:
        return f"exited with {self.proc.returncode if self.proc else None}"

    def terminate(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def run_embedded(settings: Settings) -> int:
    data_dir = settings.data_dir.absolute()
    data_dir.mkdir(parents=True, exist_ok=True)
    log_dir = data_dir / "logs"
    log_dir.mkdir(exist_ok=True)
    stopping = False

    def request_stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)

    cluster: PostgresCluster | None = None
    database_url = settings.database_url
    if not database_url:
        cluster = PostgresCluster(data_dir / "postgres")
        if (cluster.datadir / "postmaster.pid").exists():
            cluster.stop()  # left over from a killed run
        cluster.start()
        database_url = asyncio.run(cluster.create_database("conda_store"))
    asyncio.run(_prepare_database(database_url))

    nats: NatsServer | None = None
    nats_url = settings.nats_url
    if "CONDA_STORE_NATS_URL" not in os.environ and "NATS_URL" not in os.environ:
        nats = NatsServer(data_dir / "nats")
        nats.start()
        nats_url = nats.url

    ports = choose_ports(settings)
    env = {
        **os.environ,
        "CONDA_STORE_DATA_DIR": str(data_dir),
        "CONDA_STORE_DATABASE_URL": database_url,
        "CONDA_STORE_NATS_URL": nats_url,
        "CONDA_STORE_SECRET": jwt_secret(settings.secret, data_dir),
        **{f"CONDA_STORE_{name.upper()}": str(port) for name, port in ports.items()},
    }
    host = settings.bind_host
    # No external URL is set here: links are built from each request, so whoever opens the
    # server by whatever name gets links that work for them.

    children = [Child(name, env, log_dir) for name in SERVICE_ORDER]
    servers: list[Supervised] = [p for p in (cluster, nats) if p is not None]
    supervisor = Supervisor([*servers, *children], say=_say)
    supervisor.start_all()

    health = {
        "api": f"http://{host}:{ports['api_port']}/health",
        "registry": f"http://{host}:{ports['registry_port']}/health",
        "ui": f"http://{host}:{ports['ui_port']}/health",
        "solver": f"http://{host}:{ports['solver_health_port']}/",
        "packer": f"http://{host}:{ports['packer_health_port']}/",
        "relay": f"http://{host}:{ports['relay_health_port']}/",
        "projector": f"http://{host}:{ports['projector_health_port']}/",
    }
    (data_dir / "stack.json").write_text(
        __import__("json").dumps(
            {"pid": os.getpid(), "nats_url": nats_url, "health": health, **ports}, indent=2
        )
    )
    _say(f"conda-store API and UI:  http://{host}:{ports['api_port']}/")
    _say(f"OCI registry:            {host}:{ports['registry_port']}")
    _say(f"data directory:          {data_dir}  (logs in {log_dir})")
    _say("press Ctrl-C to stop")

    try:
        while not stopping:
            time.sleep(0.2)
            if not stopping:
                supervisor.tick()
    finally:
        _say("stopping...")
        for child in reversed(children):
            child.terminate()
        for child in reversed(children):
            child.wait(15)
        if nats is not None:
            nats.stop()
        if cluster is not None:
            cluster.stop()
        _say("stopped")
    return 0
