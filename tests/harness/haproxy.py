"""Debian's haproxy in front of the API, as deployments put one: a throwaway config on a free
port of 127.0.0.1, in the foreground, stopped when the block ends.

Two routes, the two ways a proxy publishes conda-store under a path:
- ``/conda-store/...`` is passed on unchanged (conda-store's own layout: the server runs with
  ``url_prefix=/conda-store``);
- ``/stripped/...`` loses its prefix on the way and says so in ``X-Forwarded-Prefix`` (Traefik's
  StripPrefix); anything else is a 404 from the proxy itself.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from shared.embedded.ports import free_port, port_is_open
from tests.harness.processes import stop_process

CONFIG = """global
    maxconn 256
defaults
    mode http
    timeout connect 5s
    timeout client 600s
    timeout server 600s
frontend web
    bind 127.0.0.1:{port}
    acl kept path {prefix}
    acl kept path_beg {prefix}/
    acl stripped path_beg /stripped/
    http-request return status 404 content-type text/plain string "not routed" if !kept !stripped
    http-request set-header X-Forwarded-Proto http
    http-request set-header X-Forwarded-Prefix /stripped if stripped
    http-request replace-path ^/stripped(/.*)$ \\1 if stripped
    default_backend conda_store
backend conda_store
    server api 127.0.0.1:{backend_port}
"""


@contextmanager
def haproxy(backend_port: int, prefix: str = "/conda-store") -> Iterator[int]:
    """Yield the proxy's port."""
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="cs-haproxy-") as tmp:
        config = Path(tmp) / "haproxy.cfg"
        config.write_text(CONFIG.format(port=port, prefix=prefix, backend_port=backend_port))
        proc = subprocess.Popen(
            [binary, "-db", "-f", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 10
            while not port_is_open("127.0.0.1", port):
                if proc.poll() is not None or time.monotonic() > deadline:
                    out = proc.stdout.read().decode() if proc.stdout else ""
                    raise RuntimeError(f"haproxy did not start: {out}")
                time.sleep(0.05)
            yield port
        finally:
            stop_process(proc)
