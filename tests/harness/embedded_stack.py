"""`conda-store-server up` as a user runs it (`./dev up`): a subprocess that owns Postgres, NATS
and every service, on free ports, in a data directory of its own."""

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
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from services import embedded
from shared.embedded.ports import free_port

PORT_FIELDS = tuple(name.upper() for name in embedded.PORT_FIELDS)


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


def children(pid: int) -> dict[str, int]:
    """The live processes ``up`` (``pid``) started, by service name; nats-server as "nats"."""
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
        if fields[0] in ("Z", "X") or int(fields[1]) != pid:
            continue
        if argv[0].endswith(b"nats-server"):
            found["nats"] = int(entry.name)
        elif b"services.cli" in argv and len(argv) > 3:
            found[argv[3].decode()] = int(entry.name)
    return found


def database_url(data_dir: Path) -> str:
    port = (data_dir / "postgres" / "postmaster.pid").read_text().splitlines()[3]
    return f"postgresql://postgres@127.0.0.1:{port.strip()}/conda_store"


@contextmanager
def scratch_data_dir() -> Iterator[Path]:
    """Outside pytest's tmp tree: pytest resets its root to 0700, which would lock out the
    ``postgres`` user that owns the embedded cluster when we run as root."""
    path = Path(tempfile.mkdtemp(prefix="cs-up-"))
    try:
        yield path / "state"
    finally:
        shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class RunningStack:
    data_dir: Path
    ports: dict[str, int]

    @property
    def api_port(self) -> int:
        return self.ports["API_PORT"]

    @property
    def registry_port(self) -> int:
        return self.ports["REGISTRY_PORT"]

    def log(self, service: str) -> str:
        path = self.data_dir / "logs" / f"{service}.log"
        return path.read_text(errors="replace") if path.exists() else ""


@contextmanager
def running_stack(extra_env: dict[str, str] | None = None) -> Iterator[RunningStack]:
    """A healthy `up` on free ports; stopped (and its data removed) afterwards.

    A port found free can be taken by another process before the stack binds it (other test
    sessions share the machine): then the stack is started again on other ports, once.
    """
    for attempt in (1, 2):
        with scratch_data_dir() as data_dir:
            ports = {name: free_port() for name in PORT_FIELDS}
            proc = start_stack(data_dir, ports, extra_env)
            try:
                try:
                    wait_healthy(data_dir, proc)
                except (TimeoutError, AssertionError):
                    if attempt == 2:
                        raise
                    continue
                yield RunningStack(data_dir, ports)
                return
            finally:
                stop_stack(proc)
