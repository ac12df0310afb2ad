"""`conda-store-server up` as a user runs it: a subprocess that owns Postgres, NATS and services."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.embedded.ports import free_port
from shared.events import NamespaceCreated, new_event
from shared.eventstore import EventStore
from tests.harness.embedded_stack import (
    PORT_FIELDS,
    database_url,
    fresh_data_dir,
    start_stack,
    stop_stack,
    wait_healthy,
)


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = fresh_data_dir()
    yield path
    shutil.rmtree(path.parent, ignore_errors=True)


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
