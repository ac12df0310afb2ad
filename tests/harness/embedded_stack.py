"""`conda-store-server up` as a user runs it (``./dev up``): a subprocess that owns its Postgres
cluster, nats-server and the seven services, on free ports, in a throwaway data directory.

Used by the embedded-stack tests, the fault suite (hostile input, keep-alive, schemathesis) and
the load benchmark. ``embedded_stack`` is one stack per test session, started on first use.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from shared.embedded.ports import free_port

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELED"})
PORT_FIELDS = (
    "API_PORT",
    "REGISTRY_PORT",
    "UI_PORT",
    "SOLVER_HEALTH_PORT",
    "PACKER_HEALTH_PORT",
    "RELAY_HEALTH_PORT",
    "PROJECTOR_HEALTH_PORT",
)


def start_stack(
    data_dir: Path, ports: dict[str, int], extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONDA_STORE_", "NATS_URL"))}
    env.update({f"CONDA_STORE_{k}": str(v) for k, v in ports.items()})
    env["CONDA_STORE_DATA_DIR"] = str(data_dir)
    env.update(extra_env or {})
    env.pop("DATABASE_URL", None)
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "up"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_healthy(data_dir: Path, proc: subprocess.Popen[bytes], timeout: float = 90) -> dict:
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
        stack_file = data_dir / "stack.json"
        if stack_file.exists():
            stack = json.loads(stack_file.read_text())
            if stack.get("pid") == proc.pid:
                try:
                    for name, url in stack["health"].items():
                        r = httpx.get(url, timeout=2)
                        assert r.status_code == 200, (name, r.status_code)
                        last_error = name
                    return stack
                except (httpx.HTTPError, AssertionError) as exc:
                    last_error = repr(exc)
        time.sleep(0.3)
    raise TimeoutError(f"stack not healthy: {last_error}")


def stop_stack(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    return out.decode()


def database_url(data_dir: Path) -> str:
    port = (data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[3]
    return f"postgresql://postgres@127.0.0.1:{port.strip()}/conda_store"


def fresh_data_dir() -> Path:
    """Outside pytest's tmp tree: pytest resets its root to 0700, which would lock out the
    ``postgres`` user that owns the embedded cluster when we run as root."""
    return Path(tempfile.mkdtemp(prefix="cs-up-")) / "state"


@dataclass
class EmbeddedStack:
    """A running ``up``: its URLs, data directory and database; ``stop()`` ends it."""

    proc: subprocess.Popen[bytes]
    data_dir: Path
    ports: dict[str, int]

    @classmethod
    def start(cls, extra_env: dict[str, str] | None = None) -> EmbeddedStack:
        data_dir = fresh_data_dir()
        ports = {name: free_port() for name in PORT_FIELDS}
        stack = cls(start_stack(data_dir, ports, extra_env), data_dir, ports)
        try:
            wait_healthy(data_dir, stack.proc)
        except BaseException:
            stack.stop()
            raise
        return stack

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['API_PORT']}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['UI_PORT']}"

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['REGISTRY_PORT']}"

    @property
    def database_url(self) -> str:
        return database_url(self.data_dir)

    def login_token(self, username: str = "admin") -> str:
        """A JWT for ``username`` (the dummy login gives ``*/*: admin``), minted by the API."""
        with httpx.Client(base_url=self.api_url, timeout=30) as client:
            r = client.post("/login/", json={"username": username, "password": "password"})
            assert r.status_code == 200, r.text
            r = client.post("/api/v1/token/")
            assert r.status_code == 200, r.text
            return r.json()["data"]["token"]

    def build(self, headers: dict[str, str], namespace: str, spec: str) -> dict:
        """Submit ``spec`` and wait until its build is terminal; the build as the API shows it."""
        with httpx.Client(base_url=self.api_url, headers=headers, timeout=30) as client:
            r = client.post(
                "/api/v1/specification/", json={"namespace": namespace, "specification": spec}
            )
            assert r.status_code == 200, r.text
            build_id = r.json()["data"]["build_id"]
            for _ in range(1200):
                build = client.get(f"/api/v1/build/{build_id}/").json()["data"]
                if build["status"] in TERMINAL:
                    return build
                time.sleep(0.1)
        raise TimeoutError(f"build {build_id} is still {build['status']}")

    def logs(self) -> dict[str, str]:
        """Each service's log file, for failure messages."""
        log_dir = self.data_dir / "logs"
        return {p.stem: p.read_text(errors="replace") for p in sorted(log_dir.glob("*.log"))}

    def stop(self) -> str:
        try:
            return stop_stack(self.proc) if self.proc.poll() is None else ""
        finally:
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)


@pytest.fixture(scope="session")
def embedded_stack() -> Iterator[EmbeddedStack]:
    """One ``conda-store-server up`` for the session's tests that need the real processes."""
    stack = EmbeddedStack.start()
    yield stack
    stack.stop()
