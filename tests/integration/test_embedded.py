"""`conda-store-server up` as a user runs it: a subprocess that owns Postgres, NATS and services."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from shared.events import NamespaceCreated, new_event
from shared.eventstore import EventStore
from tests.harness.embedded_stack import EmbeddedStack


@pytest.mark.slow
def test_up_serves_health_stops_on_sigint_and_restarts_with_the_same_data() -> None:
    with EmbeddedStack.start() as stack:
        assert stack.manifest["api_port"] == stack.api_port
        r = httpx.get(f"{stack.api_url}/api/v1/")
        assert r.json()["status"] == "ok"

        async def write() -> None:
            store = await EventStore.connect(stack.database_url)
            await store.append("namespace-kept", [new_event(NamespaceCreated(namespace="kept"))])
            await store.close()

        asyncio.run(write())
        output = stack.stop()
        assert stack.proc is not None and stack.proc.returncode == 0, output
        assert "stopped" in output
        for port in stack.ports.values():  # everything it started has let go of its port
            with httpx.Client() as client:
                with pytest.raises(httpx.ConnectError):
                    client.get(f"http://127.0.0.1:{port}/", timeout=1)

        stack.start_again()

        async def read() -> tuple[int, object]:
            store = await EventStore.connect(stack.database_url)
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
        output = stack.stop()
        assert stack.proc.returncode == 0, output


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
