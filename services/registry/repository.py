"""Read side: repositories and tags from the read model, one build's image from its stream.

The build's own event stream, read through the event store, is authoritative for "is its
image there yet" (the read model may lag the NATS event that woke a waiter); lists (tags,
catalog) are documented queries on the projector's read model (``docs/walkthrough.md``).
The registry reads no table of another service and never ``events`` by SQL.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import asyncpg

from shared.events import stream_of_build
from shared.eventstore import EventStore
from shared.projections.build_state import build_from_stream
from shared.projections.model import Build

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
    return image_of(build_id, build_from_stream(await store.read_stream(stream_of_build(build_id))))


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


def image_of(build_id: int, build: Build | None) -> BuildImage:
    """The registry's view of a build folded by the read model's own fold (one fold, so the
    registry and the API never disagree about an image)."""
    if build is None:
        return BuildImage(build_id, "unknown")
    found = BuildImage(build_id, "pending", build.namespace, build.environment, build.build_key)
    if build.deleted_on is not None:
        return replace(found, status="deleted")
    if build.image_status == "PUSHED":
        return replace(found, status="pushed", digest=build.image_digest or "")
    if build.image_status in ("FAILED", "SKIPPED"):
        return replace(found, status="failed", reason=build.image_reason or "")
    if build.status == "FAILED":
        return replace(found, status="failed", reason=build.status_info or "")
    if build.status == "CANCELED":
        return replace(found, status="failed", reason=f"build canceled: {build.status_info or ''}")
    return found


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
