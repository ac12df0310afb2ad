"""`conda-store-server up` as a user runs it (``./dev up``): a subprocess that owns its Postgres
cluster, nats-server and the seven services, on free ports, in a throwaway data directory.

One way to get one: ``with EmbeddedStack.start(extra_env) as stack:`` (stopped and its data
removed on exit). ``embedded_stack`` is one stack per test session, started on first use, for
the tests that only need the real processes running (the fault suite); tests that need their
own settings (a URL prefix) or a stack to themselves start their own. The load benchmark uses
it too.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from services import embedded
from shared.embedded.ports import free_port
from shared.embedded.postgres import PostgresCluster
from shared.projections.model import TERMINAL

PORT_FIELDS = tuple(name.upper() for name in embedded.PORT_FIELDS)
STOP_TIMEOUT_S = 60.0


def start_stack(
    data_dir: Path, ports: dict[str, int], extra_env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start it with no ``CONDA_STORE_*`` from this process, as on a fresh shell."""
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


def wait_healthy(
    data_dir: Path, proc: subprocess.Popen[bytes], timeout: float = 90
) -> dict[str, Any]:
    """What ``up`` wrote to ``stack.json``, once every service it lists answers its health
    URL. AssertionError (with the output) if ``up`` exits first, e.g. on a taken port."""
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


def database_url(data_dir: Path) -> str:
    port = (data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[3]
    return f"postgresql://postgres@127.0.0.1:{port.strip()}/conda_store"


def scratch_data_dir() -> Path:
    """A new data directory outside pytest's tmp tree: pytest resets its root to 0700, which
    would lock out the ``postgres`` user that owns the embedded cluster when we run as root.
    Its parent is the directory to remove."""
    return Path(tempfile.mkdtemp(prefix="cs-up-")) / "state"


@dataclass
class EmbeddedStack:
    """One ``up``: its ports, URLs, data directory, database and logs."""

    data_dir: Path
    ports: dict[str, int]
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    manifest: dict[str, Any] = field(default_factory=dict)
    """What ``up`` wrote to ``stack.json`` for the current run."""

    @classmethod
    def start(cls, extra_env: dict[str, str] | None = None) -> EmbeddedStack:
        """A healthy ``up`` on free ports in a scratch data directory.

        A port found free can be taken by another process before the stack binds it (other
        test sessions share the machine): then the stack is started again on other ports, once.
        """
        try:
            return cls._started(extra_env)
        except (TimeoutError, AssertionError):
            return cls._started(extra_env)

    @classmethod
    def _started(cls, extra_env: dict[str, str] | None) -> EmbeddedStack:
        ports = {name: free_port() for name in PORT_FIELDS}
        stack = cls(scratch_data_dir(), ports, dict(extra_env or {}))
        try:
            stack.start_again()
        except BaseException:
            stack.close()
            raise
        return stack

    def start_again(self) -> None:
        """Run ``up`` (again, after :meth:`stop`) on this data directory and these ports."""
        assert self.proc is None or self.proc.poll() is not None, "up is still running"
        self.proc = start_stack(self.data_dir, self.ports, self.extra_env)
        self.manifest = wait_healthy(self.data_dir, self.proc)

    def stop(self) -> str:
        """SIGINT, as Ctrl-C on ``./dev up``; its output. The data directory stays."""
        if self.proc is None or self.proc.stdout is None or self.proc.stdout.closed:
            return ""  # never started, or stopped already
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            out, _ = self.proc.communicate(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: up and its children
            out, _ = self.proc.communicate()
            raise AssertionError(f"up did not stop on SIGINT:\n{out.decode()}") from None
        return out.decode()

    def close(self) -> None:
        """Stop it and remove its data."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)

    def __enter__(self) -> EmbeddedStack:
        return self  # started already: ``with EmbeddedStack.start() as stack``

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def api_port(self) -> int:
        return self.ports["API_PORT"]

    @property
    def ui_port(self) -> int:
        return self.ports["UI_PORT"]

    @property
    def registry_port(self) -> int:
        return self.ports["REGISTRY_PORT"]

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    @property
    def registry_url(self) -> str:
        return f"http://127.0.0.1:{self.registry_port}"

    @property
    def database_url(self) -> str:
        return database_url(self.data_dir)

    def children(self) -> dict[str, int]:
        """The live processes ``up`` started, by service name; nats-server as "nats"."""
        assert self.proc is not None, "up was never started"
        found: dict[str, int] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            fields = stat[stat.rfind(")") + 2 :].split()
            if fields[0] in ("Z", "X") or int(fields[1]) != self.proc.pid:
                continue
            if argv[0].endswith(b"nats-server"):
                found["nats"] = int(entry.name)
            elif b"services.cli" in argv and len(argv) > 3:
                found[argv[3].decode()] = int(entry.name)
        return found

    def postmaster_pid(self) -> int | None:
        """The embedded Postgres's postmaster, or None while it is down."""
        return PostgresCluster(self.data_dir / "postgres").postmaster_pid()

    def log(self, service: str) -> str:
        """One service's log file (``api``, ``solver``, ...), for failure messages."""
        path = self.data_dir / "logs" / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def login_token(self, username: str = "admin") -> str:
        """A JWT for ``username`` (the dummy login gives ``*/*: admin``), minted by the API."""
        with httpx.Client(base_url=self.api_url, timeout=30) as client:
            r = client.post("/login/", json={"username": username, "password": "password"})
            assert r.status_code == 200, r.text
            r = client.post("/api/v1/token/")
            assert r.status_code == 200, r.text
            return str(r.json()["data"]["token"])

    def build(self, headers: dict[str, str], namespace: str, spec: str) -> dict[str, Any]:
        """Submit ``spec`` and wait until its build is terminal; the build as the API shows it."""
        with httpx.Client(base_url=self.api_url, headers=headers, timeout=30) as client:
            r = client.post(
                "/api/v1/specification/", json={"namespace": namespace, "specification": spec}
            )
            assert r.status_code == 200, r.text
            build_id = r.json()["data"]["build_id"]
            for _ in range(1200):
                build: dict[str, Any] = client.get(f"/api/v1/build/{build_id}/").json()["data"]
                if build["status"] in TERMINAL:
                    return build
                time.sleep(0.1)
        raise TimeoutError(f"build {build_id} is still {build['status']}")


@pytest.fixture(scope="session")
def embedded_stack() -> Iterator[EmbeddedStack]:
    """One ``conda-store-server up`` for the session's tests that need the real processes."""
    with EmbeddedStack.start() as stack:
        yield stack
