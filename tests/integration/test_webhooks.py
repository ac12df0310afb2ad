"""Webhooks against real receivers on free ports: signed deliveries in log order through
failures (500s), stalls (past the timeout) and recovery; filters; replay from a position; the
admin-only API and its refusals; and a stalled receiver that delays no build."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from services.api.app import create_app
from shared.events import BuildStarted, NamespaceCreated, new_event
from shared.webhooks import SIGNATURE_HEADER, verify
from tests.fixtures.api import ApiHarness, api_settings, spec_event
from tests.harness.receiver import Receiver

FAST_RETRIES = dict(
    predefined_tokens={},
    enable_ui=False,
    webhook_retry_base_s=0.05,
    webhook_retry_cap_s=0.3,
    webhook_failing_after=3,
)


@asynccontextmanager
async def gateway(stack: Any, settings: Any, tmp_path: Any) -> AsyncIterator[ApiHarness]:
    """An API process (and so a dispatcher) with retries quick enough to watch."""
    app = create_app(
        api_settings(tmp_path, settings).model_copy(update=FAST_RETRIES), store=stack.store
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield ApiHarness(client, app.state.api, stack.store, stack)


@pytest.fixture
async def hooks(stack: Any, settings: Any, tmp_path: Any) -> AsyncIterator[ApiHarness]:
    async with gateway(stack, settings, tmp_path) as harness:
        yield harness


@pytest.fixture
def receivers() -> Iterator[Callable[[], Receiver]]:
    started: list[Receiver] = []

    def start() -> Receiver:
        started.append(Receiver().start())
        return started[-1]

    yield start
    for receiver in started:
        receiver.stop()


async def eventually(check: Callable[[], Any], timeout: float = 20.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or check}")
        await asyncio.sleep(0.05)


async def register(h: ApiHarness, url: str, **fields: Any) -> dict[str, Any]:
    r = await h.client.post("/api/v1/webhook/", json={"url": url, **fields}, headers=h.admin())
    assert r.status_code == 200, r.text
    return r.json()["data"]


async def delivery(h: ApiHarness, webhook_id: str) -> dict[str, Any]:
    r = await h.client.get(f"/api/v1/webhook/{webhook_id}/", headers=h.admin())
    assert r.status_code == 200, r.text
    return r.json()["data"]["delivery"]


async def create_namespaces(h: ApiHarness, *names: str) -> None:
    for name in names:
        r = await h.client.post(f"/api/v1/namespace/{name}/", headers=h.admin())
        assert r.status_code == 200, r.text


def bodies(receiver: Receiver) -> list[dict[str, Any]]:
    return [json.loads(r.body) for r in receiver.accepted]


async def test_deliveries_are_signed_in_order_through_failures_and_stalls(
    hooks: ApiHarness, receivers: Callable[[], Receiver]
) -> None:
    receiver = receivers()
    hook = await register(hooks, receiver.url, event_types=["NamespaceCreated"], timeout_s=0.5)
    secret = hook["secret"]
    assert secret.startswith("whsec_") and hook["delivery"]["status"] == "pending"

    await create_namespaces(hooks, "ns-0", "ns-1")
    await eventually(lambda: len(receiver.accepted) == 2, what="the first two deliveries")

    receiver.mode = "fail"
    await create_namespaces(hooks, "ns-2", "ns-3")

    async def failing() -> bool:
        return (await delivery(hooks, hook["id"]))["status"] == "failing"

    await eventually(failing, what="the webhook to show as failing")
    state = await delivery(hooks, hook["id"])
    assert state["last_error"] == "HTTP 500 Internal Server Error"
    assert state["last_status_code"] == 500 and state["failures"] >= 3

    receiver.stall_s = 1.5
    receiver.mode = "stall"

    async def timed_out() -> bool:
        r = await hooks.client.get(
            f"/api/v1/webhook/{hook['id']}/deliveries/", headers=hooks.admin()
        )
        return any(a["error"] == "no answer within 0.5s" for a in r.json()["data"]["attempts"])

    await eventually(timed_out, what="an attempt that timed out")
    await create_namespaces(hooks, "ns-4")
    receiver.mode = "ok"  # recovered: everything held back arrives, in order, once
    await eventually(lambda: len(receiver.accepted) >= 5, what="every delivery after recovery")
    await asyncio.sleep(0.5)  # nothing more (no duplicate) turns up

    got = bodies(receiver)
    assert [e["data"]["namespace"] for e in got] == [f"ns-{i}" for i in range(5)]
    positions = [e["global_position"] for e in got]
    assert positions == sorted(positions) and len(set(positions)) == 5
    for received in receiver.accepted:
        assert verify(secret, received.body, received.headers[SIGNATURE_HEADER])
        assert received.headers["X-Conda-Store-Webhook"] == hook["id"]
    state = await delivery(hooks, hook["id"])
    assert state["status"] == "ok" and state["failures"] == 0
    assert state["delivered"] == 5 and state["last_delivered_position"] == positions[-1]
    assert state["attempts"] > 5 and state["last_delivered_type"] == "NamespaceCreated"


async def test_a_dispatcher_that_was_down_resumes_where_it_stopped(
    stack: Any, settings: Any, tmp_path: Any, receivers: Callable[[], Receiver]
) -> None:
    """Events recorded while no API process ran are delivered by the next one, after the
    ones already delivered, none twice (its position is in Postgres, not in memory)."""
    receiver = receivers()
    async with gateway(stack, settings, tmp_path) as first:
        hook = await register(first, receiver.url, event_types=["NamespaceCreated"])
        await create_namespaces(first, "d-0", "d-1")
        await eventually(lambda: len(receiver.accepted) == 2)

        async def recorded() -> bool:  # else the second is delivered again (at least once)
            return (await delivery(first, hook["id"]))["delivered"] == 2

        await eventually(recorded, what="the second delivery to be recorded")
    # no API process, so no dispatcher, while these are recorded
    for name in ("d-2", "d-3"):
        await stack.store.append(f"namespace-{name}", [new_event(NamespaceCreated(namespace=name))])
    async with gateway(stack, settings, tmp_path) as second:
        await eventually(lambda: len(receiver.accepted) >= 4, what="the events of the outage")
        await asyncio.sleep(0.3)
        assert [e["data"]["namespace"] for e in bodies(receiver)] == [f"d-{i}" for i in range(4)]
        assert (await delivery(second, hook["id"]))["delivered"] == 4


async def test_filters_by_namespace_including_a_builds_events(
    hooks: ApiHarness, receivers: Callable[[], Receiver]
) -> None:
    """A build's events concern its namespace even before the read model has the build."""
    alpha, typed = receivers(), receivers()
    await register(hooks, alpha.url, namespaces=["alpha"])
    await register(hooks, typed.url, event_types=["BuildStarted"])
    first, second = await hooks.store.next_build_id(), await hooks.store.next_build_id()
    for build_id, namespace in ((first, "alpha"), (second, "beta")):
        await hooks.append(f"build-{build_id}", spec_event(build_id, namespace, "env", ["x"]))
        await hooks.append(f"build-{build_id}", BuildStarted(build_id=build_id))
    await eventually(lambda: len(alpha.accepted) == 2 and len(typed.accepted) == 2)
    await asyncio.sleep(0.3)
    assert [(e["type"], e["data"]["build_id"]) for e in bodies(alpha)] == [
        ("SpecSubmitted", first),
        ("BuildStarted", first),
    ]
    assert [e["data"]["build_id"] for e in bodies(typed)] == [first, second]


async def test_replay_redelivers_from_a_position(
    hooks: ApiHarness, receivers: Callable[[], Receiver]
) -> None:
    receiver = receivers()
    hook = await register(hooks, receiver.url, event_types=["NamespaceCreated"])
    await create_namespaces(hooks, "r-0", "r-1", "r-2")
    await eventually(lambda: len(receiver.accepted) == 3)
    positions = [e["global_position"] for e in bodies(receiver)]

    url = f"/api/v1/webhook/{hook['id']}/replay/"
    r = await hooks.client.post(url, params={"after": positions[0]}, headers=hooks.admin())
    assert r.status_code == 200, r.text
    await eventually(lambda: len(receiver.accepted) == 5, what="the replayed deliveries")
    await asyncio.sleep(0.3)
    assert [e["global_position"] for e in bodies(receiver)] == positions + positions[1:]

    r = await hooks.client.post(url, params={"after": 10**9}, headers=hooks.admin())
    assert r.status_code == 400 and "beyond the end of the log" in r.json()["message"]
    r = await hooks.client.post(
        "/api/v1/webhook/nope/replay/", params={"after": 0}, headers=hooks.admin()
    )
    assert r.status_code == 404 and r.json()["message"] == "webhook nope does not exist"


async def test_admins_only_clear_refusals_and_the_secret_is_shown_once(
    hooks: ApiHarness, receivers: Callable[[], Receiver]
) -> None:
    c, admin = hooks.client, hooks.admin()
    editor = hooks.auth("ed", {"*/*": ["developer"]})
    for headers in ({}, editor):
        assert (await c.get("/api/v1/webhook/", headers=headers)).status_code == 403
        r = await c.post("/api/v1/webhook/", json={"url": "http://x/"}, headers=headers)
        assert r.status_code == 403
    for body, message in (
        ({"url": "ftp://x/"}, "url must start with http:// or https://"),
        ({}, "url is required"),
        ({"url": "http://x/", "event_types": ["Nope"]}, "unknown event types: Nope"),
        ({"url": "http://x/", "secret": "mine"}, "unknown fields: secret"),
        ("http://x/", "the body must be a JSON object"),
    ):
        r = await c.post("/api/v1/webhook/", json=body, headers=admin)
        assert r.status_code == 400 and message in r.json()["message"], r.text

    receiver = receivers()
    hook = await register(hooks, receiver.url)
    secret = hook["secret"]
    listed = await c.get("/api/v1/webhook/", headers=admin)
    assert [h["id"] for h in listed.json()["data"]] == [hook["id"]]
    assert secret not in listed.text and "secret" not in listed.json()["data"][0]
    assert secret not in (await c.get(f"/api/v1/webhook/{hook['id']}/", headers=admin)).text
    events = await c.get("/api/v1/events/", headers=admin)
    assert "WebhookRegistered" in events.text and secret not in events.text
    as_editor = await c.get("/api/v1/events/", headers=editor)
    assert "WebhookRegistered" not in as_editor.text

    await create_namespaces(hooks, "before-delete")
    await eventually(lambda: receiver.accepted, what="a delivery")
    r = await c.delete(f"/api/v1/webhook/{hook['id']}/", headers=admin)
    assert r.status_code == 200, r.text
    assert (await c.get(f"/api/v1/webhook/{hook['id']}/", headers=admin)).status_code == 404
    assert (await c.delete(f"/api/v1/webhook/{hook['id']}/", headers=admin)).status_code == 404
    await asyncio.sleep(0.5)  # the dispatcher has stopped it (its deletion may be delivered)
    count = len(receiver.accepted)
    await create_namespaces(hooks, "after-delete")
    await asyncio.sleep(0.5)
    assert len(receiver.accepted) == count


async def test_a_stalled_receiver_delays_no_build_and_no_other_webhook(
    hooks: ApiHarness, receivers: Callable[[], Receiver], tiny_channel: Any
) -> None:
    from tests.integration.test_api_lifecycle import spec_text, start_workers

    await start_workers(hooks)
    stalled, healthy = receivers(), receivers()
    stalled.mode = "stall"
    await register(hooks, stalled.url, timeout_s=20)
    await register(hooks, healthy.url, event_types=["Packed"])
    post = {"namespace": "stall", "specification": spec_text(tiny_channel.url, "libfoo")}
    started = time.monotonic()
    r = await hooks.client.post("/api/v1/specification/", json=post, headers=hooks.admin())
    assert r.status_code == 200, r.text
    build_id = r.json()["data"]["build_id"]
    assert (await hooks.stack.wait_build(build_id, timeout=60))["status"] == "COMPLETED"
    await eventually(lambda: healthy.accepted, what="the healthy receiver's Packed")
    took = time.monotonic() - started
    assert took < 20, (
        f"the build and the other webhook waited on the stalled receiver ({took:.1f}s)"
    )
    assert bodies(healthy)[0]["data"]["build_id"] == build_id
    assert stalled.attempts == 1 and stalled.accepted == []  # still waiting on its first event
