"""Webhooks, the pure part: registrations folded from the ``webhooks`` stream, which events a
webhook wants, how a delivery is signed, and when a failed one is tried again.

No I/O here: the dispatcher (``services/api/webhooks``) and the routes call these, so the
rules an integrator relies on (the signature, the filters, the retry schedule) are stated and
tested once.

Secrets are never stored. A webhook's secret is derived from the deployment's signing secret
and the webhook's id (an HMAC with its own label, so it reveals nothing about the signing key),
computed by the API once to show it at creation, and again by the dispatcher to sign each
delivery. The events carry no secret, so the log, ``/api/v1/events/`` and NATS cannot leak one.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from shared.events import (
    EventData,
    RecordedEvent,
    WebhookDeleted,
    WebhookRegistered,
    WebhookReplayRequested,
)

STREAM = "webhooks"
"""Every registration, deletion and replay request, in one stream (few, and rarely)."""
SIGNATURE_HEADER = "X-Conda-Store-Signature"
"""``sha256=<hex>``: HMAC-SHA256 of the exact request body with the webhook's secret."""
SECRET_PREFIX = "whsec_"
_SECRET_LABEL = b"conda-store webhook secret v1\x00"
MAX_URL_CHARS = 2048
MAX_DESCRIPTION_CHARS = 1000
MAX_FILTER_ITEMS = 200
TIMEOUT_RANGE_S = (0.5, 60.0)

DeliveryStatus = Literal["pending", "ok", "retrying", "failing"]


class WebhookError(ValueError):
    """A registration the API refuses (400), with the message shown to the admin."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- registrations ------------------------------------------------------------------------


@dataclass(frozen=True)
class Webhook:
    """A live registration, as folded from its stream."""

    webhook_id: str
    url: str
    event_types: tuple[str, ...]
    namespaces: tuple[str, ...]
    description: str
    timeout_s: float
    registered_position: int
    """The registration's place in the log: deliveries start after it."""
    registered_at: datetime
    registered_by: str | None
    replay: tuple[int, int] | None = None
    """The latest replay request: (its version in the stream, the position to restart after)."""

    def summary(self) -> dict[str, Any]:
        """The registration as the API shows it (no secret: there is none to show)."""
        return {
            "id": self.webhook_id,
            "url": self.url,
            "event_types": list(self.event_types),
            "namespaces": list(self.namespaces),
            "description": self.description,
            "timeout_s": self.timeout_s,
            "registered_position": self.registered_position,
            "registered_at": self.registered_at.isoformat(),
            "registered_by": self.registered_by,
        }


def fold_webhooks(events: Iterable[RecordedEvent]) -> dict[str, Webhook]:
    """The live webhooks after ``events`` (the ``webhooks`` stream, in order)."""
    hooks: dict[str, Webhook] = {}
    for event in events:
        payload = event.payload()
        if isinstance(payload, WebhookRegistered):
            hooks[payload.webhook_id] = Webhook(
                webhook_id=payload.webhook_id,
                url=payload.url,
                event_types=tuple(payload.event_types),
                namespaces=tuple(payload.namespaces),
                description=payload.description,
                timeout_s=payload.timeout_s,
                registered_position=event.global_position,
                registered_at=event.recorded_at,
                registered_by=event.metadata.actor,
            )
        elif isinstance(payload, WebhookDeleted):
            hooks.pop(payload.webhook_id, None)
        elif isinstance(payload, WebhookReplayRequested) and payload.webhook_id in hooks:
            hook = hooks[payload.webhook_id]
            hooks[payload.webhook_id] = replace(hook, replay=(event.version, payload.after))
    return hooks


def check_url(url: object) -> str:
    """An absolute http(s) URL with a host, as given; WebhookError says what is wrong."""
    if not isinstance(url, str) or not url.strip():
        raise WebhookError("url is required: the http:// or https:// address to POST events to")
    url = url.strip()
    if len(url) > MAX_URL_CHARS:
        raise WebhookError(f"url is longer than {MAX_URL_CHARS} characters")
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise WebhookError("url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookError(f"url {url!r} is not a valid URL: {exc}") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookError(f"url must start with http:// or https://, not {url!r}")
    if not parts.hostname:
        raise WebhookError(f"url {url!r} names no host")
    if port == 0:
        raise WebhookError(f"url {url!r} has port 0")
    if parts.fragment:
        raise WebhookError("url must not have a #fragment (it is never sent)")
    return url


def check_event_types(types: object, known: Iterable[str] | None = None) -> list[str]:
    """Event type names, each one the project defines (empty: every type)."""
    names = _strings(types, "event_types")
    valid = set(known if known is not None else EventData.registry)
    unknown = [t for t in names if t not in valid]
    if unknown:
        raise WebhookError(
            f"unknown event types: {', '.join(unknown)} (known: {', '.join(sorted(valid))})"
        )
    return sorted(set(names))


def check_namespaces(namespaces: object) -> list[str]:
    """Namespace names (empty: every namespace, and events that name none)."""
    return sorted(set(_strings(namespaces, "namespaces")))


def check_timeout(value: object) -> float:
    low, high = TIMEOUT_RANGE_S
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise WebhookError("timeout_s must be a number of seconds")
    if not low <= value <= high:
        raise WebhookError(f"timeout_s must be between {low:g} and {high:g} seconds")
    return float(value)


def check_description(value: object) -> str:
    if not isinstance(value, str):
        raise WebhookError("description must be a string")
    if len(value) > MAX_DESCRIPTION_CHARS:
        raise WebhookError(f"description is longer than {MAX_DESCRIPTION_CHARS} characters")
    return value


def registration_from(
    body: object, webhook_id: str, known_types: Iterable[str] | None = None
) -> WebhookRegistered:
    """``POST /api/v1/webhook/``'s body checked into the event it records."""
    if not isinstance(body, Mapping):
        raise WebhookError("the body must be a JSON object with at least a url")
    allowed = {"url", "event_types", "namespaces", "description", "timeout_s"}
    extra = sorted(set(body) - allowed)
    if extra:
        raise WebhookError(f"unknown fields: {', '.join(extra)} (allowed: {', '.join(allowed)})")
    return WebhookRegistered(
        webhook_id=webhook_id,
        url=check_url(body.get("url")),
        event_types=check_event_types(body.get("event_types", []), known_types),
        namespaces=check_namespaces(body.get("namespaces", [])),
        description=check_description(body.get("description", "")),
        timeout_s=check_timeout(
            body.get("timeout_s", WebhookRegistered.model_fields["timeout_s"].default)
        ),
    )


def _strings(value: object, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise WebhookError(f"{field} must be a list of non-empty strings (empty: all)")
    if len(value) > MAX_FILTER_ITEMS:
        raise WebhookError(f"{field} has more than {MAX_FILTER_ITEMS} items")
    return list(value)


# --- filters ------------------------------------------------------------------------------


def wants(hook: Webhook, event_type: str, namespace: str | None) -> bool:
    """Whether ``hook`` gets an event of ``event_type`` concerning ``namespace`` (None: a
    deployment-wide event, which only a webhook without a namespace filter gets)."""
    if hook.event_types and event_type not in hook.event_types:
        return False
    return not hook.namespaces or namespace in hook.namespaces


# --- signing ------------------------------------------------------------------------------


def webhook_secret(signing_key: str | bytes, webhook_id: str) -> str:
    """The webhook's secret: the same for the same deployment key and webhook, never stored."""
    key = signing_key.encode() if isinstance(signing_key, str) else signing_key
    digest = hmac.new(key, _SECRET_LABEL + webhook_id.encode(), hashlib.sha256).hexdigest()
    return SECRET_PREFIX + digest


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for ``body``: ``sha256=`` and the hex HMAC."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver does: recompute over the raw body and compare in constant time."""
    return header is not None and hmac.compare_digest(sign(secret, body), header)


def delivery_headers(
    secret: str, body: bytes, hook_id: str, event: RecordedEvent
) -> dict[str, str]:
    """Every header of a delivery; the event id lets a receiver drop a redelivery."""
    return {
        "Content-Type": "application/json",
        "User-Agent": "conda-store-webhooks/1",
        SIGNATURE_HEADER: sign(secret, body),
        "X-Conda-Store-Webhook": hook_id,
        "X-Conda-Store-Event": event.type,
        "X-Conda-Store-Delivery": str(event.event_id),
        "X-Conda-Store-Position": str(event.global_position),
    }


# --- retries ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Failed deliveries wait ``base_s`` doubled per failure, never more than ``cap_s``, and
    are retried at the cap forever; after ``failing_after`` failures in a row the webhook is
    shown as failing (still retried: a receiver back from an outage gets everything)."""

    base_s: float = 1.0
    cap_s: float = 300.0
    failing_after: int = 5

    def delay_s(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (1-based)."""
        if failures <= 0:
            return 0.0
        return min(self.cap_s, self.base_s * 2 ** min(failures - 1, 62))

    def status(self, failures: int) -> DeliveryStatus:
        """The status shown after an attempt that left ``failures`` failures in a row."""
        if failures <= 0:
            return "ok"
        return "failing" if failures >= self.failing_after else "retrying"
