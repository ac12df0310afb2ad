"""Read side: repositories and tags from the read model, one build's image from its stream.

The build's own event stream, read through the event store, is authoritative for "is its
image there yet" (the read model may lag the NATS event that woke a waiter); lists (tags,
catalog) are documented queries on the projector's read model (``docs/walkthrough.md``).
The registry reads no table of another service and never ``events`` by SQL.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import asyncpg

from shared.events import NO_IMAGE_REASON, RecordedEvent, stream_of_build
from shared.eventstore import EventStore

ImageStatus = Literal["unknown", "pending", "pushed", "failed", "deleted"]

_WITH_IMAGE = (
    "FROM builds b JOIN build_artifacts a ON a.build_id = b.id "
    "AND a.artifact_type = 'DOCKER_MANIFEST' "
    "JOIN environments e ON e.namespace = b.namespace AND e.name = b.environment "
    "AND e.deleted_on IS NULL WHERE b.deleted_on IS NULL"
)


@dataclass(frozen=True, slots=True)
class BuildImage:
    build_id: int
    status: ImageStatus
    namespace: str = ""
    environment: str = ""
    build_key: str = ""
    digest: str = ""
    reason: str = ""


async def build_image(store: EventStore, build_id: int) -> BuildImage:
    """Where one build's image stands, folded from the build's stream."""
    return fold_image(build_id, await store.read_stream(stream_of_build(build_id)))


async def current_image(
    store: EventStore, namespace: str, name: str
) -> tuple[bool, BuildImage | None]:
    """(environment exists, image of its current build) for ``latest``."""
    env = await environment(store.pool, namespace, name)
    if env is None:
        return False, None
    if env["current_build_id"] is None:
        return True, None
    return True, await build_image(store, int(env["current_build_id"]))


def fold_image(build_id: int, events: Iterable[RecordedEvent]) -> BuildImage:
    """Fold the image-relevant events of one build stream (raw data keeps the hot path cheap)."""
    found = BuildImage(build_id, "unknown")
    for event in events:
        kind, data = event.type, event.data
        if kind == "SpecSubmitted":
            found = BuildImage(
                build_id,
                "pending",
                data["namespace"],
                data["environment"],
                data.get("build_key", ""),
            )
            if data.get("make_image") is False:
                found = _with(found, "failed", reason=NO_IMAGE_REASON)
        elif kind == "ImagePushed":
            found = _with(found, "pushed", digest=data["manifest_digest"])
        elif kind in ("ImageFailed", "BuildFailed") and found.status != "pushed":
            found = _with(found, "failed", reason=data.get("reason", ""))
        elif kind == "BuildCanceled" and found.status != "pushed":
            found = _with(found, "failed", reason=f"build canceled: {data.get('reason', '')}")
        elif kind == "BuildDeleted":
            found = _with(found, "deleted")
    return found


def _with(image: BuildImage, status: ImageStatus, digest: str = "", reason: str = "") -> BuildImage:
    return BuildImage(
        image.build_id,
        status,
        image.namespace,
        image.environment,
        image.build_key,
        digest or image.digest,
        reason,
    )


async def environment(pool: asyncpg.Pool, namespace: str, name: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT id, current_build_id FROM environments "
        "WHERE namespace = $1 AND name = $2 AND deleted_on IS NULL",
        namespace,
        name,
    )


async def build_id_for_key(pool: asyncpg.Pool, namespace: str, name: str, key: str) -> int | None:
    return await pool.fetchval(
        "SELECT id FROM builds WHERE namespace = $1 AND environment = $2 AND build_key = $3",
        namespace,
        name,
        key,
    )


async def tags(pool: asyncpg.Pool, namespace: str, name: str) -> list[str]:
    """Build keys of the environment's live builds that have an image."""
    rows = await pool.fetch(
        f"SELECT b.build_key {_WITH_IMAGE} AND b.namespace = $1 AND b.environment = $2",
        namespace,
        name,
    )
    return sorted(r["build_key"] for r in rows if r["build_key"])


async def manifest_keys(pool: asyncpg.Pool, namespace: str, name: str) -> list[str]:
    rows = await pool.fetch(
        f"SELECT a.key {_WITH_IMAGE} AND b.namespace = $1 AND b.environment = $2",
        namespace,
        name,
    )
    return [r["key"] for r in rows]


async def repositories(pool: asyncpg.Pool) -> list[str]:
    rows = await pool.fetch(f"SELECT DISTINCT b.namespace, b.environment {_WITH_IMAGE}")
    return sorted(f"{r['namespace']}/{r['environment']}" for r in rows)


async def reusable_build(pool: asyncpg.Pool, namespace: str, name: str, sha256: str) -> int | None:
    """The newest live, not failed build of this exact spec (for on-demand images)."""
    return await pool.fetchval(
        "SELECT b.id FROM builds b JOIN specifications s ON s.id = b.specification_id "
        "WHERE b.namespace = $1 AND b.environment = $2 AND s.sha256 = $3 "
        "AND b.deleted_on IS NULL AND b.status NOT IN ('FAILED', 'CANCELED') "
        "ORDER BY b.id DESC LIMIT 1",
        namespace,
        name,
        sha256,
    )
