"""Environment read model: conda-store's Environment shape, v1 pages and v2 cursor pages."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from shared.wire import find_bad_text, is_row_id

from ..envelopes import Paging
from .builds import image_shape
from .namespaces import namespace_shape
from .where import Where, like_escape

SORT = {"namespace": "e.namespace", "name": "e.name", "id": "e.id"}
SELECT = (
    "SELECT e.id, e.name, e.namespace, e.current_build_id, e.description, e.deleted_on, "
    "n.id AS ns_id, n.name AS ns_name, n.metadata AS ns_metadata, "
    "n.role_mappings AS ns_role_mappings"
)
FROM = " FROM environments e JOIN namespaces n ON n.id = e.namespace_id"
CURRENT_IMAGE = (
    ", cb.status AS cb_status, cb.deleted_on AS cb_deleted_on, cb.image_status AS cb_image_status,"
    " cb.image_reason AS cb_image_reason, cb.image_digest AS cb_image_digest"
)
"""The current build's image columns (v1 extra), from ``JOIN_CURRENT``."""
JOIN_CURRENT = " LEFT JOIN builds cb ON cb.id = e.current_build_id"


@dataclass
class EnvFilters:
    """The filters every environment list accepts (v1 and v2)."""

    search: str | None = None
    namespace: str | None = None
    name: str | None = None
    status: str | None = None
    artifact: str | None = None
    packages: list[str] = field(default_factory=list)
    extra_patterns: tuple[list[str], list[str]] | None = None

    def apply(self, where: Where) -> None:
        if self.search:
            needle = f"%{like_escape(self.search)}%"
            where.add("(e.namespace LIKE {} OR e.name LIKE {})", needle, needle)
        if self.namespace is not None:
            where.add("e.namespace = {}", self.namespace)
        if self.name is not None:
            where.add("e.name = {}", self.name)
        if self.status is not None:
            where.add(
                "EXISTS (SELECT 1 FROM builds b WHERE b.id = e.current_build_id AND b.status = {})",
                self.status,
            )
        if self.artifact is not None:
            where.add(
                "EXISTS (SELECT 1 FROM build_artifacts a WHERE a.build_id = e.current_build_id "
                "AND a.artifact_type = {})",
                self.artifact,
            )
        for package in self.packages:
            where.add(
                "EXISTS (SELECT 1 FROM build_packages p WHERE p.build_id = e.current_build_id "
                "AND p.name = {})",
                package,
            )
        if self.extra_patterns is not None:
            where.visible("e.namespace", "e.name", self.extra_patterns)


def environment_shape(row: asyncpg.Record, *, v2: bool = False) -> dict[str, Any]:
    shape: dict[str, Any] = {
        "id": row["id"],
        "namespace": namespace_shape(row, "ns_"),
        "name": row["name"],
        "current_build_id": row["current_build_id"],
    }
    if not v2:
        shape["current_build"] = None
    shape["description"] = row["description"]
    if "cb_status" in row.keys():  # an extension: the current build's image, for the ui's list
        shape["image"] = image_shape(row, "cb_") if row["current_build_id"] else None
    return shape


def _live_where(patterns: tuple[list[str], list[str]], filters: EnvFilters) -> Where:
    """Live environments; a deleted namespace's environments are deleted with it (the fold)."""
    where = Where()
    where.add("e.deleted_on IS NULL")
    where.visible("e.namespace", "e.name", patterns)
    filters.apply(where)
    return where


async def get(pool: asyncpg.Pool, namespace: str, name: str) -> asyncpg.Record | None:
    """Soft-deleted environments are still returned, as conda-store does."""
    return await pool.fetchrow(
        f"{SELECT}{CURRENT_IMAGE}{FROM}{JOIN_CURRENT} WHERE e.namespace = $1 AND e.name = $2",
        namespace,
        name,
    )


async def list_page(
    pool: asyncpg.Pool,
    patterns: tuple[list[str], list[str]],
    filters: EnvFilters,
    paging: Paging,
) -> tuple[list[dict[str, Any]], int]:
    where = _live_where(patterns, filters)
    order = ", ".join(paging.sort_keys(SORT, ["namespace", "name"])) + ", e.id"
    # page the environments alone (index order, LIMIT fence), then join their namespaces
    rows = await pool.fetch(
        f"{SELECT}{CURRENT_IMAGE} FROM (SELECT * FROM environments e{where.sql()} "
        f"ORDER BY {order} LIMIT {paging.size} OFFSET {paging.offset}) e "
        f"JOIN namespaces n ON n.id = e.namespace_id{JOIN_CURRENT} ORDER BY {order}",
        *where.args,
    )
    count = await pool.fetchval(f"SELECT count(*) FROM environments e{where.sql()}", *where.args)
    return [environment_shape(r) for r in rows], count


END_CURSOR = {"last_id": None, "last_value": None}


def encode_cursor(value: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(value, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    """None for no cursor; raises ValueError for one that is not ours (a cursor is the
    client's text: its id and values reach the query, so they must fit the columns)."""
    if not cursor:
        return None
    value = json.loads(base64.b64decode(cursor, validate=True))
    if not isinstance(value, dict) or not isinstance(value.get("last_value") or {}, dict):
        raise ValueError("bad cursor")
    last_id = value.get("last_id")
    if last_id is not None and not is_row_id(last_id):
        raise ValueError("bad cursor id")
    last_value = value.get("last_value") or {}
    if any(not isinstance(v, str) for v in last_value.values()) or find_bad_text(last_value):
        raise ValueError("bad cursor value")
    return value


async def cursor_page(
    pool: asyncpg.Pool,
    patterns: tuple[list[str], list[str]],
    filters: EnvFilters,
    sort_by: list[str],
    descending: bool,
    limit: int,
    cursor: dict[str, Any] | None,
) -> tuple[list[dict[str, Any]], int, str]:
    """v2 keyset paging: order by the sort columns then id, resume after the cursor's row."""
    where = _live_where(patterns, filters)
    count = await pool.fetchval(f"SELECT count(*) FROM environments e{where.sql()}", *where.args)
    cols = [SORT[k] for k in sort_by] + ["e.id"]
    if cursor and cursor.get("last_id") is not None:
        last = cursor.get("last_value") or {}
        values = [last.get(k) for k in sort_by] + [cursor["last_id"]]
        op = "<" if descending else ">"
        placeholders = ", ".join(where.param(v) for v in values)
        where.conditions.append(f"({', '.join(cols)}) {op} ({placeholders})")
    elif cursor and cursor.get("last_id") is None and "last_id" in cursor:
        return [], count, encode_cursor(END_CURSOR)
    direction = "DESC" if descending else "ASC"
    order = ", ".join(f"{c} {direction}" for c in cols)
    rows = await pool.fetch(
        f"{SELECT} FROM (SELECT * FROM environments e{where.sql()} ORDER BY {order} "
        f"LIMIT {int(limit)}) e JOIN namespaces n ON n.id = e.namespace_id ORDER BY {order}",
        *where.args,
    )
    if not rows:
        return [], count, encode_cursor(END_CURSOR)
    last_row = rows[-1]
    next_cursor = {
        "last_id": last_row["id"],
        "last_value": {k: last_row["namespace" if k == "namespace" else "name"] for k in sort_by},
    }
    return [environment_shape(r, v2=True) for r in rows], count, encode_cursor(next_cursor)
