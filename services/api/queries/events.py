"""The event feed (our extension): which events a caller may read, by the ARN they concern."""

from __future__ import annotations

from typing import Any

import asyncpg

from shared.auth import Permission
from shared.events import RecordedEvent
from shared.eventstore import EventStore
from shared.webhooks import STREAM as WEBHOOKS_STREAM

from ..deps import Caller

P = Permission


async def build_arns(pool: asyncpg.Pool, build_ids: set[int]) -> dict[int, str]:
    rows = await pool.fetch(
        "SELECT id, namespace, environment FROM builds WHERE id = ANY($1)", list(build_ids)
    )
    return {r["id"]: f"{r['namespace']}/{r['environment']}" for r in rows}


def event_arn(event: RecordedEvent, builds: dict[int, str]) -> tuple[str, Permission] | None:
    """The ARN and permission that make ``event`` readable; None for deployment-wide events.

    Webhook registrations are an admin's (``setting::update`` on the global ARN): a
    receiver's URL may itself be a credential (a chat service's incoming-hook URL)."""
    if event.stream == WEBHOOKS_STREAM:
        return "", P.SETTING_UPDATE
    data = event.data
    namespace = data.get("namespace")
    environment = data.get("environment")
    if namespace and environment:
        return f"{namespace}/{environment}", P.ENVIRONMENT_READ
    build_id = data.get("build_id")
    if isinstance(build_id, int) and build_id in builds:
        return builds[build_id], P.ENVIRONMENT_READ
    if namespace:
        return namespace, P.NAMESPACE_READ
    if event.type == "TokenIssued":
        return data.get("primary_namespace", ""), P.NAMESPACE_ROLE_MAPPING_CREATE
    return None


def event_namespace(event: RecordedEvent, builds: dict[int, str]) -> str | None:
    """The namespace ``event`` concerns, as its readability is decided (None: none, as for a
    global setting or a webhook's own events); ``builds`` maps build ids to their ARN."""
    target = event_arn(event, builds)
    if target is None or not target[0]:
        return None
    return target[0].split("/", 1)[0]


async def readable_page(
    store: EventStore, caller: Caller, after: int, limit: int
) -> tuple[list[dict[str, Any]], int]:
    """Up to ``limit`` readable events after ``after``; returns them and the position reached.

    Scans at most a few batches so a caller who may read little cannot make one request scan the
    whole log; the returned position lets the next request resume where this one stopped.
    """
    out: list[dict[str, Any]] = []
    position = after
    for _ in range(5):
        batch = await store.read_all(position, limit=max(limit, 100))
        if not batch:
            break
        ids = {e.data["build_id"] for e in batch if isinstance(e.data.get("build_id"), int)}
        arns = await build_arns(store.pool, ids) if ids else {}
        for event in batch:
            position = event.global_position
            target = event_arn(event, arns)
            allowed = caller.can(target[0], target[1]) if target else caller.can("", P.SETTING_READ)
            if allowed:
                out.append(event.model_dump(mode="json"))
                if len(out) >= limit:
                    return out, position
    return out, position
