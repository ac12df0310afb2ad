"""Namespace read model: conda-store's Namespace shape and the filtered list."""

from __future__ import annotations

from typing import Any

import asyncpg

from ..envelopes import Paging
from .where import Where

SORT = {"name": "name", "id": "id"}


def role_mapping_rows(mappings: dict[str, list[str]] | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for entity, roles in (mappings or {}).items():
        for role in roles:
            rows.append({"id": len(rows) + 1, "entity": entity, "role": role})
    return rows


def namespace_shape(row: asyncpg.Record, prefix: str = "") -> dict[str, Any]:
    return {
        "id": row[f"{prefix}id"],
        "name": row[f"{prefix}name"],
        "metadata_": row[f"{prefix}metadata"],
        "role_mappings": role_mapping_rows(row[f"{prefix}role_mappings"]),
    }


async def default_namespace(pool: asyncpg.Pool, deployment_default: str | None = None) -> str:
    """The ``default_namespace`` runtime setting: the global layer's, else the deploy-time
    default, else conda-store's (``default``)."""
    value = await pool.fetchval(
        "SELECT data->>'default_namespace' FROM runtime_settings WHERE level_key = ''"
    )
    return value or deployment_default or "default"


async def get_live(pool: asyncpg.Pool, name: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT * FROM namespaces WHERE name = $1 AND deleted_on IS NULL", name
    )


async def list_page(
    pool: asyncpg.Pool, patterns: tuple[list[str], list[str]], paging: Paging
) -> tuple[list[dict[str, Any]], int]:
    where = Where()
    where.add("deleted_on IS NULL")
    where.visible("name", None, patterns)
    order = ", ".join(paging.sort_keys(SORT, ["name"]))
    base = f"FROM namespaces{where.sql()}"
    rows = await pool.fetch(
        f"SELECT id, name, count(*) OVER () AS total {base} ORDER BY {order} "
        f"LIMIT {paging.size} OFFSET {paging.offset}",
        *where.args,
    )
    count = (
        rows[0]["total"] if rows else await pool.fetchval(f"SELECT count(*) {base}", *where.args)
    )
    return [{"id": r["id"], "name": r["name"]} for r in rows], count


async def usage(
    pool: asyncpg.Pool, patterns: tuple[list[str], list[str]]
) -> dict[str, dict[str, int]]:
    where = Where()
    where.add("n.deleted_on IS NULL")
    where.visible("n.name", None, patterns)
    rows = await pool.fetch(
        "SELECT n.name, "
        "(SELECT count(*) FROM environments e WHERE e.namespace_id = n.id "
        " AND e.deleted_on IS NULL) AS envs, "
        "(SELECT count(*) FROM builds b JOIN environments e ON e.id = b.environment_id "
        " WHERE e.namespace_id = n.id AND e.deleted_on IS NULL) AS builds, "
        "(SELECT coalesce(sum(b.size), 0) FROM builds b JOIN environments e "
        " ON e.id = b.environment_id WHERE e.namespace_id = n.id "
        " AND e.deleted_on IS NULL) AS storage "
        f"FROM namespaces n{where.sql()} ORDER BY n.id",
        *where.args,
    )
    return {
        r["name"]: {
            "num_environments": r["envs"],
            "num_builds": r["builds"],
            "storage": int(r["storage"]),
        }
        for r in rows
    }


def v2_roles(row: asyncpg.Record) -> list[dict[str, Any]]:
    return [
        {
            "id": m["id"],
            "namespace": row["name"],
            "other_namespace": m["other_namespace"],
            "role": m["role"],
        }
        for m in row["role_mappings_v2"]
    ]
