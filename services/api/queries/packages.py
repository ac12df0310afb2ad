"""Channels and packages (conda-store's /channel/ and /package/) from the indexed tables."""

from __future__ import annotations

from typing import Any

import asyncpg

from ..envelopes import Paging, iso
from .builds import package_shape
from .where import Where, like_escape

CHANNEL_SORT = {"name": "name", "id": "id"}
PACKAGE_SORT = {"channel": "c.name", "name": "p.name", "version": "p.version"}
DISTINCT = {"channel": "c.name", "name": "p.name", "version": "p.version"}


async def channels_page(pool: asyncpg.Pool, paging: Paging) -> tuple[list[dict[str, Any]], int]:
    order = ", ".join(paging.sort_keys(CHANNEL_SORT, ["id"]))
    rows = await pool.fetch(
        f"SELECT id, name, last_update FROM conda_channels ORDER BY {order} "
        f"LIMIT {paging.size} OFFSET {paging.offset}"
    )
    count = await pool.fetchval("SELECT count(*) FROM conda_channels")
    data = [{"id": r["id"], "name": r["name"], "last_update": iso(r["last_update"])} for r in rows]
    return data, count


async def channel_ids(pool: asyncpg.Pool, names: list[str]) -> dict[str, int]:
    """Row ids of the named channels (those indexed so far), for conda-store's ``channel_id``."""
    rows = await pool.fetch(
        "SELECT name, id FROM conda_channels WHERE name = ANY($1::text[])", names
    )
    return {row["name"]: row["id"] for row in rows}


BUILD_MATCH = (
    "(EXISTS (SELECT 1 FROM build_packages bp JOIN conda_channels bc ON bc.name = bp.channel"
    " WHERE bc.id = p.channel_id AND bp.manager = 'conda' AND bp.name = p.name"
    " AND bp.version = p.version AND bp.build LIKE {0})"
    " OR EXISTS (SELECT 1 FROM conda_package_builds cp JOIN conda_channels cc"
    " ON cc.name = cp.channel WHERE cc.id = p.channel_id AND cp.name = p.name"
    " AND cp.version = p.version AND cp.build LIKE {0}))"
)


async def packages_page(
    pool: asyncpg.Pool,
    search: str | None,
    exact: bool,
    distinct_on: list[str],
    paging: Paging,
    build: str | None = None,
) -> tuple[list[dict[str, Any]], int]:
    """Search by substring (trigram-indexed) or exact name; ``distinct_on`` keeps one row per
    combination of the given columns, as conda-store's DISTINCT ON does. ``build`` (a 500 in
    conda-store) keeps packages with a build string containing it, in a built environment or
    in a channel the solver has read."""
    where = Where()
    if search:
        if exact:
            where.add("p.name = {}", search)
        else:
            where.add("p.name LIKE {}", f"%{like_escape(search)}%")
    if build:
        where.add(BUILD_MATCH, f"%{like_escape(build)}%")
    distinct = [DISTINCT[d] for d in distinct_on if d in DISTINCT]
    base = f" FROM conda_packages p JOIN conda_channels c ON c.id = p.channel_id{where.sql()}"
    order_keys = paging.sort_keys(PACKAGE_SORT, ["channel", "name", "version"])
    cols = "p.id, p.channel_id, c.name AS channel, p.license, p.name, p.version, p.summary"
    if distinct:
        # DISTINCT ON needs its columns first in ORDER BY; the page order is applied outside.
        inner = (
            f"SELECT DISTINCT ON ({', '.join(distinct)}) {cols}{base} "
            f"ORDER BY {', '.join(distinct)}, p.id"
        )
        outer_order = ", ".join(
            k.replace("c.name", "channel").replace("p.", "") for k in order_keys
        )
        rows = await pool.fetch(
            f"SELECT *, count(*) OVER () AS total FROM ({inner}) d ORDER BY {outer_order}, id "
            f"LIMIT {paging.size} OFFSET {paging.offset}",
            *where.args,
        )
        count_sql = f"SELECT count(*) FROM ({inner}) d"
    else:
        rows = await pool.fetch(
            f"SELECT {cols}{base} ORDER BY {', '.join(order_keys)}, "
            f"p.id LIMIT {paging.size} OFFSET {paging.offset}",
            *where.args,
        )
        count_sql = f"SELECT count(*) FROM conda_packages p{where.sql()}"
        count = await pool.fetchval(count_sql, *where.args)
        return [package_shape(r) for r in rows], count
    count = rows[0]["total"] if rows else await pool.fetchval(count_sql, *where.args)
    return [package_shape(r) for r in rows], count
