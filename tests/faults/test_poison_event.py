"""One event too big for NATS must not stop every build for every user.

NATS takes messages up to 1 MiB by default, and the relay publishes every event as one. The
API refuses what would make such an event (413/400 naming the limit, nothing written), and the
relay parks an event it can never publish (an old one, or one written around the API) instead
of retrying it forever: later builds complete, and the event's own build fails with the reason.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shared.embedded.processes import stop_child
from shared.events import SpecSubmitted, new_event, utcnow
from shared.eventstore import MAX_EVENT_BYTES, EventStore
from shared.settings import Settings
from shared.spec import (
    MAX_DESCRIPTION_CHARS,
    MAX_SPECIFICATION_BYTES,
    build_key_v2,
    parse_specification,
    specification_sha256,
)
from shared.submission import submit_specification
from tests.channels.server import ServedChannel
from tests.fixtures.api import ApiHarness, api  # noqa: F401
from tests.harness.processes import start_service

ISSUE_DESCRIPTION = "x" * 700_000


def spec_text(name: str, channel: str, description: str = "") -> str:
    doc = {"name": name, "description": description, "channels": [channel], "dependencies": ["bar"]}
    return yaml.safe_dump(doc)


@pytest.mark.parametrize(
    ("description", "status", "limit"),
    [
        ("d" * (MAX_DESCRIPTION_CHARS + 1), 400, MAX_DESCRIPTION_CHARS),
        (ISSUE_DESCRIPTION, 413, MAX_SPECIFICATION_BYTES),
    ],
    ids=["description-over-its-limit", "the-issues-700000-characters"],
)
async def test_a_specification_too_big_for_one_event_is_refused_and_nothing_is_written(
    api: ApiHarness,  # noqa: F811
    description: str,
    status: int,
    limit: int,
) -> None:
    before = await api.store.last_position()
    body = {"namespace": "team", "specification": spec_text("big", "conda-forge", description)}
    r = await api.client.post("/api/v1/specification/", json=body, headers=api.admin())
    assert r.status_code == status, r.text[:500]
    assert str(limit) in r.json()["message"], r.json()["message"][:500]
    assert await api.store.last_position() == before


async def test_a_body_over_the_request_limit_is_refused_at_the_edge_naming_its_limit(
    api: ApiHarness,  # noqa: F811
    settings: Settings,
) -> None:
    """The edge guard reads no body past ``max_body_bytes``, so above it its 413 answers
    before the specification's own limit (which answers for smaller bodies, above)."""
    limit = settings.max_body_bytes
    assert MAX_SPECIFICATION_BYTES < limit
    before = await api.store.last_position()
    body = {"namespace": "team", "specification": spec_text("big", "conda-forge", "x" * limit)}
    r = await api.client.post("/api/v1/specification/", json=body, headers=api.admin())
    assert r.status_code == 413, r.text[:500]
    message = r.json()["message"]
    assert "request body too large" in message and str(limit) in message, message
    assert await api.store.last_position() == before


async def test_any_event_over_the_limit_is_refused_with_413(api: ApiHarness) -> None:  # noqa: F811
    r = await api.client.post("/api/v1/namespace/team/", headers=api.admin())
    assert r.status_code == 200, r.text
    before = await api.store.last_position()
    huge = {"notes": "n" * MAX_EVENT_BYTES}
    r = await api.client.put("/api/v1/namespace/team/metadata", json=huge, headers=api.admin())
    assert r.status_code == 413, r.text[:500]
    assert str(MAX_EVENT_BYTES) in r.json()["message"]
    assert await api.store.last_position() == before


async def append_as_before_the_limit(store: EventStore, channel: ServedChannel) -> int:
    """A build whose SpecSubmitted carries the 700,000 characters twice (as version 1 stored
    it): 1.4 MB, written with the store's SQL function as an old release would have."""
    build_id = await store.next_build_id()
    spec: dict[str, Any] = {
        "name": "poison",
        "description": ISSUE_DESCRIPTION,
        "channels": [channel.url],
        "dependencies": ["bar"],
        "prefix": None,
        "variables": None,
    }
    sha = specification_sha256(spec)
    data = SpecSubmitted(
        build_id=build_id,
        namespace="default",
        environment="poison",
        specification=spec,
        sha256=sha,
        channels=[channel.url],
        conda_dependencies=["bar"],
        description=ISSUE_DESCRIPTION,
        build_key=build_key_v2(sha, utcnow(), build_id, "poison"),
    )
    row = new_event(data, correlation_id=f"build-{build_id}").row()
    await store.pool.fetch("SELECT * FROM append_events($1, 0, $2)", f"build-{build_id}", [row])
    return build_id


async def wait_terminal(store: EventStore, build_id: int, timeout: float = 120) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        try:
            row = await store.pool.fetchrow("SELECT * FROM builds WHERE id = $1", build_id)
        except Exception:  # the projector has not created the read model yet
            row = None
        if row is not None and row["status"] in ("COMPLETED", "FAILED", "CANCELED"):
            return row
        assert loop.time() < deadline, f"build {build_id} is {row and row['status']}"
        await asyncio.sleep(0.2)


async def test_an_event_nats_cannot_carry_is_parked_and_later_builds_complete(
    event_store: EventStore, settings: Settings, tiny_channel: ServedChannel, tmp_path: Path
) -> None:
    s = settings.model_copy(update={"artifact_dir": Path(settings.data_dir) / "artifacts"})
    poison = await append_as_before_the_limit(event_store, tiny_channel)
    log = tmp_path / "services.log"
    procs = [start_service(n, s, log) for n in ("relay", "projector", "solver", "packer", "api")]
    try:
        later = await submit_specification(
            event_store, parse_specification(spec_text("later", tiny_channel.url)), "default"
        )
        row = await wait_terminal(event_store, later.build_id)
        assert row["status"] == "COMPLETED", row["status_info"]

        failed = await wait_terminal(event_store, poison)
        assert failed["status"] == "FAILED"
        assert "over the message bus limit" in failed["status_info"], failed["status_info"]
        types = [e.type for e in await event_store.read_stream(f"build-{poison}")]
        assert types == ["SpecSubmitted", "BuildFailed"]

        [parked] = await event_store.read_stream("parked-relay")
        assert parked.type == "MessageParked" and parked.data["consumer"] == "relay"
        assert "bytes, over the message bus limit" in parked.data["error"]
        assert '"type":"SpecSubmitted"' in parked.data["payload"]
        assert "event cannot be published; parked" in log.read_text()

        api_port = procs[-1].env["CONDA_STORE_API_PORT"]  # type: ignore[attr-defined]
        await scrape(
            f"http://127.0.0.1:{api_port}/metrics",
            'conda_store_parked_messages{consumer="relay"} 1',
            "conda_store_relay_pending_events 0",
        )
    finally:
        for proc in procs:
            stop_child(proc)


async def scrape(url: str, *lines: str, timeout: float = 60) -> None:
    """Wait until the metrics at ``url`` show every one of ``lines``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    text = ""
    async with httpx.AsyncClient() as client:
        while True:
            try:
                r = await client.get(url, timeout=5)
                text = r.text if r.status_code == 200 else text
            except httpx.HTTPError:
                pass
            if all(line in text.splitlines() for line in lines):
                return
            assert loop.time() < deadline, f"{lines} not in {url}:\n{text}"
            await asyncio.sleep(0.3)
