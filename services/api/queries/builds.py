"""Build read model: conda-store's Build shape, filtered lists, artifacts, installed packages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg

from shared.build_diff import Pin
from shared.wire import is_row_id

from ..envelopes import Paging, iso
from .where import Where, like_escape

SORT = {
    "id": "b.id",
    "started_on": "b.started_on",
    "scheduled_on": "b.scheduled_on",
    "ended_on": "b.ended_on",
}
PACKAGE_SORT = {"channel": "p.channel", "name": "p.name"}
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELED"})


def specification_shape(row: asyncpg.Record | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "id": row["id"],
        "name": row["name"],
        "spec": row["spec"],
        "sha256": row["sha256"],
        "created_on": iso(row["created_on"]),
    }


def build_shape(
    row: asyncpg.Record,
    specification: dict[str, Any] | None = None,
    artifacts: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "id": row["id"],
        "environment_id": row["environment_id"],
        "specification": specification,
        "packages": None,
        "status": row["status"],
        "status_info": row["status_info"],
        "size": row["size"],
        "scheduled_on": iso(row["scheduled_on"]),
        "started_on": iso(row["started_on"]),
        "ended_on": iso(row["ended_on"]),
        "build_artifacts": artifacts,
        # extensions (conda-store has none of these): the UI greys deleted builds, shows the
        # key, and says whether the build's image exists
        "build_key": row["build_key"],
        "deleted_on": iso(row["deleted_on"]),
        "image": image_shape(row),
    }


def image_shape(row: asyncpg.Record, prefix: str = "") -> dict[str, Any] | None:
    """The build's OCI image: PUSHED (with its digest), FAILED (with the reason), SKIPPED (the
    ``build_artifacts`` setting left it out) or PENDING (a completed build the registry has not
    answered for yet); None before completion. ``prefix`` names the build's columns in a join."""
    status = row[f"{prefix}image_status"]
    if status is None and (
        row[f"{prefix}status"] != "COMPLETED" or row[f"{prefix}deleted_on"] is not None
    ):
        return None
    return {
        "status": status or "PENDING",
        "reason": row[f"{prefix}image_reason"],
        "digest": row[f"{prefix}image_digest"],
    }


async def get(pool: asyncpg.Pool, build_id: int) -> asyncpg.Record | None:
    if not is_row_id(build_id):
        return None
    return await pool.fetchrow("SELECT * FROM builds WHERE id = $1", build_id)


async def artifacts(pool: asyncpg.Pool, build_id: int) -> dict[str, str]:
    rows = await pool.fetch(
        "SELECT artifact_type, key FROM build_artifacts WHERE build_id = $1", build_id
    )
    return {r["artifact_type"]: r["key"] for r in rows}


async def status(pool: asyncpg.Pool, build_id: int) -> str | None:
    """Only the status, for loops that poll it (a live log ends with its build)."""
    return await pool.fetchval("SELECT status FROM builds WHERE id = $1", build_id)


async def submitted_spec(pool: asyncpg.Pool, specification_id: int) -> Any:
    """The specification a build was submitted with, as stored (a rebuild submits it again)."""
    return await pool.fetchval("SELECT spec FROM specifications WHERE id = $1", specification_id)


async def ids_of_environment(pool: asyncpg.Pool, environment_id: int) -> list[int]:
    """Every build of an environment, deleted ones too: their files go with it."""
    rows = await pool.fetch("SELECT id FROM builds WHERE environment_id = $1", environment_id)
    return [r["id"] for r in rows]


async def ids_in_namespace(pool: asyncpg.Pool, namespace: str) -> list[int]:
    """Every build in a namespace, deleted ones too: their files go with it."""
    rows = await pool.fetch("SELECT id FROM builds WHERE namespace = $1", namespace)
    return [r["id"] for r in rows]


async def detail(pool: asyncpg.Pool, row: asyncpg.Record) -> dict[str, Any]:
    spec = await pool.fetchrow(
        "SELECT * FROM specifications WHERE id = $1", row["specification_id"]
    )
    arts = await pool.fetch(
        "SELECT id, artifact_type, key FROM build_artifacts WHERE build_id = $1 ORDER BY id",
        row["id"],
    )
    return build_shape(row, specification_shape(spec), [dict(a) for a in arts])


@dataclass
class BuildFilters:
    status: str | None = None
    artifact: str | None = None
    environment_id: int | None = None
    name: str | None = None
    namespace: str | None = None
    packages: list[str] = field(default_factory=list)

    def apply(self, where: Where) -> None:
        if self.status is not None:
            where.add("b.status = {}", self.status)
        if self.artifact is not None:
            where.add(
                "EXISTS (SELECT 1 FROM build_artifacts a WHERE a.build_id = b.id "
                "AND a.artifact_type = {})",
                self.artifact,
            )
        if self.environment_id is not None:
            where.add("b.environment_id = {}::bigint", self.environment_id)
        if self.name is not None:
            where.add("b.environment = {}", self.name)
        if self.namespace is not None:
            where.add("b.namespace = {}", self.namespace)
        for package in self.packages:
            where.add(
                "EXISTS (SELECT 1 FROM build_packages p WHERE p.build_id = b.id AND p.name = {})",
                package,
            )


async def list_page(
    pool: asyncpg.Pool,
    patterns: tuple[list[str], list[str]],
    filters: BuildFilters,
    paging: Paging,
) -> tuple[list[dict[str, Any]], int]:
    """Builds of live environments, deleted builds included (conda-store lists them too)."""
    where = Where()
    where.add("e.deleted_on IS NULL")
    where.visible("b.namespace", "b.environment", patterns)
    filters.apply(where)
    base = f" FROM builds b JOIN environments e ON e.id = b.environment_id{where.sql()}"
    order = ", ".join(paging.sort_keys(SORT, ["id"]))
    rows = await pool.fetch(
        f"SELECT b.*, count(*) OVER () AS total{base} ORDER BY {order}, b.id "
        f"LIMIT {paging.size} OFFSET {paging.offset}",
        *where.args,
    )
    count = rows[0]["total"] if rows else await pool.fetchval(f"SELECT count(*){base}", *where.args)
    return [build_shape(r) for r in rows], count


def package_shape(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": row["id"],
        "channel": {"id": row["channel_id"], "name": row["channel"], "last_update": None},
        "license": row["license"],
        "name": row["name"],
        "version": row["version"],
        "summary": row["summary"],
    }


async def packages_page(
    pool: asyncpg.Pool,
    build_id: int,
    search: str | None,
    exact: bool,
    build: str | None,
    paging: Paging,
) -> tuple[list[dict[str, Any]], int]:
    where = Where()
    where.add("p.build_id = {}", build_id)
    if search:
        if exact:
            where.add("p.name = {}", search)
        else:
            where.add("p.name LIKE {}", f"%{like_escape(search)}%")
    if build:
        where.add("p.build LIKE {}", f"%{like_escape(build)}%")
    base = (
        " FROM build_packages p LEFT JOIN conda_channels c ON c.name = p.channel "
        "LEFT JOIN conda_packages cp ON cp.channel_id = c.id AND cp.name = p.name "
        f"AND cp.version = p.version{where.sql()}"
    )
    order = ", ".join(paging.sort_keys(PACKAGE_SORT, ["channel", "name"]))
    rows = await pool.fetch(
        "SELECT coalesce(cp.id, p.idx + 1) AS id, c.id AS channel_id, p.channel, p.license, "
        f"p.name, p.version, p.summary, count(*) OVER () AS total{base} ORDER BY {order}, p.idx "
        f"LIMIT {paging.size} OFFSET {paging.offset}",
        *where.args,
    )
    count = rows[0]["total"] if rows else await pool.fetchval(f"SELECT count(*){base}", *where.args)
    return [package_shape(r) for r in rows], count


async def pins(pool: asyncpg.Pool, build_id: int) -> list[Pin]:
    """The build's resolved packages, conda and pip, in the order the solver listed them."""
    rows = await pool.fetch(
        "SELECT manager, name, version, build, channel FROM build_packages WHERE build_id = $1 "
        "ORDER BY idx",
        build_id,
    )
    return [Pin(r["manager"], r["name"], r["version"], r["build"], r["channel"]) for r in rows]


async def previous_build_id(pool: asyncpg.Pool, build_id: int) -> int | None:
    """The newest completed, live build of the same environment before this one: what a
    build is compared with by default."""
    return await pool.fetchval(
        "SELECT p.id FROM builds b JOIN builds p ON p.environment_id = b.environment_id "
        "WHERE b.id = $1 AND p.id < b.id AND p.status = 'COMPLETED' AND p.deleted_on IS NULL "
        "ORDER BY p.id DESC LIMIT 1",
        build_id,
    )
