"""Webhooks' pure rules: registration checks, the fold, filters, signatures, retry schedule."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from datetime import UTC, datetime

import pytest

from services.api.queries.events import event_arn, event_namespace
from shared.auth import Permission
from shared.events import (
    EventData,
    EventMetadata,
    RecordedEvent,
    WebhookDeleted,
    WebhookRegistered,
    WebhookReplayRequested,
)
from shared.webhooks import (
    SIGNATURE_HEADER,
    STREAM,
    RetryPolicy,
    Webhook,
    WebhookError,
    check_url,
    delivery_headers,
    fold_webhooks,
    registration_from,
    sign,
    verify,
    wants,
    webhook_secret,
)

NOW = datetime(2025, 1, 1, tzinfo=UTC)


def recorded(
    data: EventData, position: int, stream: str = STREAM, version: int = 1
) -> RecordedEvent:
    return RecordedEvent(
        global_position=position,
        stream=stream,
        version=version,
        event_id=uuid.uuid4(),
        type=data.event_type(),
        data=data.model_dump(mode="json"),
        metadata=EventMetadata(actor="admin"),
        occurred_at=NOW,
        recorded_at=NOW,
    )


def hook(types: tuple[str, ...] = (), namespaces: tuple[str, ...] = ()) -> Webhook:
    return Webhook("h", "http://x/", types, namespaces, "", 10.0, 1, NOW, "admin")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (None, "url is required"),
        ("", "url is required"),
        (42, "url is required"),
        ("ftp://example.com/hook", "must start with http:// or https://"),
        ("example.com/hook", "must start with http:// or https://"),
        ("http:///hook", "names no host"),
        ("http://example.com:99999/", "not a valid URL"),
        ("http://exa mple.com/", "spaces"),
        ("https://example.com/#top", "fragment"),
        ("https://example.com/" + "a" * 2100, "longer than"),
    ],
)
def test_bad_urls_are_refused_with_the_reason(url: object, message: str) -> None:
    with pytest.raises(WebhookError, match=message):
        check_url(url)


def test_good_urls_pass_as_given() -> None:
    assert check_url(" https://hooks.example.com:8443/in?token=a ") == (
        "https://hooks.example.com:8443/in?token=a"
    )
    assert check_url("http://127.0.0.1:9000/") == "http://127.0.0.1:9000/"


def test_registration_checks_every_field() -> None:
    event = registration_from(
        {
            "url": "https://h.example/",
            "event_types": ["Packed", "BuildFailed", "Packed"],
            "namespaces": ["team"],
            "timeout_s": 3,
        },
        "id-1",
    )
    assert event == WebhookRegistered(
        webhook_id="id-1",
        url="https://h.example/",
        event_types=["BuildFailed", "Packed"],
        namespaces=["team"],
        timeout_s=3.0,
    )
    assert registration_from({"url": "http://h/"}, "id-2").timeout_s == 10.0
    with pytest.raises(WebhookError, match="unknown event types: Built, Nope"):
        registration_from({"url": "http://h/", "event_types": ["Built", "Packed", "Nope"]}, "i")
    with pytest.raises(WebhookError, match="unknown fields: secret"):
        registration_from({"url": "http://h/", "secret": "s"}, "i")
    with pytest.raises(WebhookError, match="must be a JSON object"):
        registration_from(["http://h/"], "i")
    with pytest.raises(WebhookError, match="namespaces must be a list"):
        registration_from({"url": "http://h/", "namespaces": "team"}, "i")
    with pytest.raises(WebhookError, match="timeout_s must be between"):
        registration_from({"url": "http://h/", "timeout_s": 600}, "i")
    with pytest.raises(WebhookError, match="timeout_s must be a number"):
        registration_from({"url": "http://h/", "timeout_s": True}, "i")


def test_fold_keeps_live_webhooks_and_their_latest_replay() -> None:
    events = [
        recorded(WebhookRegistered(webhook_id="a", url="http://a/"), 10, version=1),
        recorded(
            WebhookRegistered(webhook_id="b", url="http://b/", namespaces=["n"]), 11, version=2
        ),
        recorded(WebhookReplayRequested(webhook_id="a", after=3), 15, version=3),
        recorded(WebhookReplayRequested(webhook_id="a", after=7), 16, version=4),
        recorded(WebhookDeleted(webhook_id="b"), 17, version=5),
        recorded(WebhookReplayRequested(webhook_id="b", after=1), 18, version=6),
    ]
    hooks = fold_webhooks(events)
    assert list(hooks) == ["a"]
    assert hooks["a"].registered_position == 10
    assert hooks["a"].replay == (4, 7)
    assert hooks["a"].registered_by == "admin"
    assert "secret" not in str(hooks["a"].summary())


def test_filters_by_type_and_namespace() -> None:
    assert wants(hook(), "Packed", None)
    assert wants(hook(), "Packed", "any")
    assert wants(hook(("Packed",)), "Packed", "x")
    assert not wants(hook(("Packed",)), "Solved", "x")
    assert wants(hook(namespaces=("team",)), "Solved", "team")
    assert not wants(hook(namespaces=("team",)), "Solved", "other")
    assert not wants(hook(namespaces=("team",)), "SettingsChanged", None)  # deployment-wide
    assert not wants(hook(("Packed",), ("team",)), "Solved", "team")


def test_secret_is_derived_per_webhook_and_never_the_key() -> None:
    one = webhook_secret("deployment-key", "a")
    assert one == webhook_secret(b"deployment-key", "a")
    assert one != webhook_secret("deployment-key", "b")
    assert one != webhook_secret("other-key", "a")
    assert one.startswith("whsec_") and "deployment-key" not in one


def test_signature_is_hmac_sha256_of_the_exact_body() -> None:
    body = b'{"type":"Packed"}'
    expected = "sha256=" + hmac.new(b"whsec_x", body, hashlib.sha256).hexdigest()
    assert sign("whsec_x", body) == expected
    assert verify("whsec_x", body, expected)
    assert not verify("whsec_x", body + b" ", expected)
    assert not verify("whsec_y", body, expected)
    assert not verify("whsec_x", body, None)


def test_delivery_headers_name_the_event() -> None:
    event = recorded(WebhookDeleted(webhook_id="z"), 42, stream="other")
    body = event.to_json()
    headers = delivery_headers("whsec_x", body, "h1", event)
    assert headers[SIGNATURE_HEADER] == sign("whsec_x", body)
    assert headers["X-Conda-Store-Delivery"] == str(event.event_id)
    assert headers["X-Conda-Store-Position"] == "42"
    assert headers["X-Conda-Store-Event"] == "WebhookDeleted"


def test_backoff_doubles_to_the_cap_and_status_follows_failures() -> None:
    policy = RetryPolicy(base_s=1.0, cap_s=30.0, failing_after=3)
    assert [policy.delay_s(n) for n in range(0, 8)] == [0, 1, 2, 4, 8, 16, 30, 30]
    assert policy.delay_s(10_000) == 30.0
    assert [policy.status(n) for n in (0, 1, 2, 3, 50)] == [
        "ok",
        "retrying",
        "retrying",
        "failing",
        "failing",
    ]


def test_webhook_events_are_for_admins_and_concern_no_namespace() -> None:
    registered = recorded(WebhookRegistered(webhook_id="a", url="http://a/"), 1)
    assert event_arn(registered, {}) == ("", Permission.SETTING_UPDATE)
    assert event_namespace(registered, {}) is None
    built = recorded(WebhookDeleted(webhook_id="a"), 2, stream="build-5")
    built = built.model_copy(update={"data": {"build_id": 5}})
    assert event_namespace(built, {5: "team/env"}) == "team"
