"""Debian's ``docker-registry`` (the reference distribution registry) on a free loopback port,
with its own config and storage: the upstream for base-image tests and the registry
benchmark's baseline."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from shared.embedded.ports import free_port


def start_reference_registry(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start it and return the process and its ``host:port`` once ``/v2/`` answers."""
    port = free_port()
    root.mkdir(parents=True, exist_ok=True)
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\n"
        "log:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
        "  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    proc = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host = f"127.0.0.1:{port}"
    for _ in range(200):
        try:
            httpx.get(f"http://{host}/v2/", timeout=1)
            return proc, host
        except httpx.HTTPError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("docker-registry did not start")


@contextmanager
def reference_registry(root: Path) -> Iterator[str]:
    proc, host = start_reference_registry(root)
    try:
        yield host
    finally:
        proc.terminate()
        proc.wait(10)
