"""Debian's haproxy for tests, as deployments put one in front of conda-store: a throwaway
config on free ports of 127.0.0.1, in the foreground.

``LoadBalancer``: each frontend spreads requests round-robin over its backends, checks them on
``/health`` twice a second, takes a dead one out, retries a request whose connection failed or
came back empty on another backend, and passes ``X-Forwarded-For/Proto/Host``.

``haproxy()``: one API behind a proxy that publishes it under a path, the two ways proxies do:
- ``/conda-store/...`` is passed on unchanged (conda-store's own layout: the server runs with
  ``url_prefix=/conda-store``);
- ``/stripped/...`` loses its prefix on the way and says so in ``X-Forwarded-Prefix`` (Traefik's
  StripPrefix); anything else is a 404 from the proxy itself.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
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
    """``backends`` maps a frontend name to the ``(server name, port)`` pairs behind it;
    ``rules`` adds ``http-request`` lines to a frontend; ``checked=False`` skips health checks
    (a backend without ``/health`` at its root)."""

    def __init__(
        self,
        workdir: Path,
        backends: dict[str, list[tuple[str, int]]],
        rules: Mapping[str, str] | None = None,
        checked: bool = True,
    ) -> None:
        self.workdir = Path(workdir)
        self.backends = backends
        self.rules = rules or {}
        self.checked = checked
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
                f"{self.rules.get(name, '')}"
                f"    default_backend {name}\n"
            )
            check = " check" if self.checked else ""
            lines = [f"backend {name}", "    balance roundrobin"]
            lines += [f"    server {server} {HOST}:{port}{check}" for server, port in servers]
            parts.append("\n".join(lines) + "\n")
        return "\n".join(parts)

    def start(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = self.workdir / "haproxy.cfg"
        config.write_text(self.config())
        binary = haproxy_binary()
        subprocess.run([binary, "-c", "-q", "-f", str(config)], check=True)
        log = open(self.workdir / "haproxy.log", "ab")  # owned by the child
        self.proc = subprocess.Popen(
            [binary, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
        )
        for port in self.ports.values():
            wait_for_port(HOST, port)

    def stop(self) -> None:
        stop_child(self.proc)
        self.proc = None


PREFIX_RULES = """\
    acl kept path {prefix}
    acl kept path_beg {prefix}/
    acl stripped path_beg /stripped/
    http-request return status 404 content-type text/plain string "not routed" if !kept !stripped
    http-request set-header X-Forwarded-Prefix /stripped if stripped
    http-request replace-path ^/stripped(/.*)$ \\1 if stripped
"""


@contextmanager
def haproxy(backend_port: int, prefix: str = "/conda-store") -> Iterator[int]:
    """Yield the port of a proxy publishing the API on ``backend_port`` under ``prefix``."""
    with tempfile.TemporaryDirectory(prefix="cs-haproxy-") as tmp:
        proxy = LoadBalancer(
            Path(tmp),
            {"web": [("api", backend_port)]},
            rules={"web": PREFIX_RULES.format(prefix=prefix)},
            checked=False,
        )
        proxy.start()
        try:
            yield proxy.ports["web"]
        finally:
            proxy.stop()
