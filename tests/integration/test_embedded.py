"""`conda-store-server up` as a user runs it: a subprocess that owns Postgres, NATS and services."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.embedded.ports import free_port
from shared.events import NamespaceCreated, new_event
from shared.eventstore import EventStore

PORT_FIELDS = (
    "API_PORT",
    "REGISTRY_PORT",
    "UI_PORT",
    "SOLVER_HEALTH_PORT",
    "PACKER_HEALTH_PORT",
    "RELAY_HEALTH_PORT",
    "PROJECTOR_HEALTH_PORT",
)


def start_stack(data_dir: Path, ports: dict[str, int]) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONDA_STORE_", "NATS_URL"))}
    env.update({f"CONDA_STORE_{k}": str(v) for k, v in ports.items()})
    env["CONDA_STORE_DATA_DIR"] = str(data_dir)
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


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Outside pytest's tmp tree: pytest resets its root to 0700, which would lock out the
    ``postgres`` user that owns the embedded cluster when we run as root."""
    path = Path(tempfile.mkdtemp(prefix="cs-up-"))
    yield path / "state"
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
def test_up_serves_health_stops_on_sigint_and_restarts_with_the_same_data(data_dir: Path) -> None:
    ports = {name: free_port() for name in PORT_FIELDS}
    proc = start_stack(data_dir, ports)
    try:
        stack = wait_healthy(data_dir, proc)
        assert stack["api_port"] == ports["API_PORT"]
        r = httpx.get(f"http://127.0.0.1:{ports['API_PORT']}/api/v1/")
        assert r.json()["status"] == "ok"

        async def write() -> None:
            store = await EventStore.connect(database_url(data_dir))
            await store.append("namespace-kept", [new_event(NamespaceCreated(namespace="kept"))])
            await store.close()

        asyncio.run(write())
    finally:
        output = stop_stack(proc)
    assert proc.returncode == 0, output
    assert "stopped" in output
    for port in ports.values():  # everything it started has let go of its port
        with httpx.Client() as client:
            with pytest.raises(httpx.ConnectError):
                client.get(f"http://127.0.0.1:{port}/", timeout=1)

    proc = start_stack(data_dir, ports)
    try:
        wait_healthy(data_dir, proc)

        async def read() -> tuple[int, object]:
            store = await EventStore.connect(database_url(data_dir))
            try:
                events = await store.read_stream("namespace-kept")
                for _ in range(100):  # the projector of the new run catches up
                    row = await store.pool.fetchval(
                        "SELECT name FROM namespaces WHERE name = 'kept'"
                    )
                    if row:
                        break
                    await asyncio.sleep(0.1)
                return len(events), row
            finally:
                await store.close()

        count, projected = asyncio.run(read())
        assert count == 1
        assert projected == "kept"
    finally:
        stop_stack(proc)
    assert proc.returncode == 0


def test_schemas_command_writes_a_schema_per_event(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "services.cli", "schemas", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    names = {p.name for p in tmp_path.iterdir()}
    for event in (
        "SpecSubmitted",
        "Solved",
        "Packed",
        "ImagePushed",
        "BuildFailed",
        "RecordedEvent",
    ):
        assert f"{event}.schema.json" in names
    schema = json.loads((tmp_path / "SpecSubmitted.schema.json").read_text())
    assert "build_id" in schema["properties"] and "build_id" in schema["required"]
    assert str(tmp_path) in out.stdout
