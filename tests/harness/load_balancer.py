"""A real load balancer for tests: Debian's haproxy with a throwaway config on free ports.

Each frontend spreads requests round-robin over its backends, checks them on ``/health`` twice a
second, takes a dead one out, retries a request whose connection failed or came back empty on
another backend, and passes ``X-Forwarded-For/Proto/Host`` as a proxy in front of the API would.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from shared.embedded.ports import free_port, wait_for_port
from shared.embedded.processes import stop_child

HOST = "127.0.0.1"

_GLOBAL = """\
global
    maxconn 4096

defaults
    mode http
    timeout connect 2s
    timeout client 10m
    timeout server 10m
    timeout http-keep-alive 2s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
    option forwardfor
    option httpchk GET /health
    default-server inter 500ms fall 2 rise 2
"""


def haproxy_binary() -> str:
    found = shutil.which("haproxy") or shutil.which("haproxy", path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise FileNotFoundError("haproxy not found; install Debian's haproxy (./dev does)")
    return found


class LoadBalancer:
    """``backends`` maps a frontend name to the ``(server name, port)`` pairs behind it."""

    def __init__(self, workdir: Path, backends: dict[str, list[tuple[str, int]]]) -> None:
        self.workdir = Path(workdir)
        self.backends = backends
        self.ports = {name: free_port(HOST) for name in backends}
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, frontend: str) -> str:
        return f"http://{HOST}:{self.ports[frontend]}"

    def address(self, frontend: str) -> str:
        """``host:port``, as registry references name a registry."""
        return f"{HOST}:{self.ports[frontend]}"

    def config(self) -> str:
        parts = [_GLOBAL]
        for name, servers in self.backends.items():
            parts.append(
                f"frontend {name}\n"
                f"    bind {HOST}:{self.ports[name]}\n"
                "    http-request set-header X-Forwarded-Proto http\n"
                "    http-request set-header X-Forwarded-Host %[req.hdr(host)]\n"
                f"    default_backend {name}\n"
            )
            lines = [f"backend {name}", "    balance roundrobin"]
            lines += [f"    server {server} {HOST}:{port} check" for server, port in servers]
            parts.append("\n".join(lines) + "\n")
        return "\n".join(parts)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "haproxy.cfg"
        config.write_text(self.config())
        binary = haproxy_binary()
        subprocess.run([binary, "-c", "-q", "-f", str(config)], check=True)
        log = open(self.workdir / "haproxy.log", "ab")  # noqa: SIM115 (owned by the child)
        self.proc = subprocess.Popen(
            [binary, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        for port in self.ports.values():
            wait_for_port(HOST, port)

    def stop(self) -> None:
        stop_child(self.proc)
        self.proc = None
