"""Reading and writing the read-model tables (the projector's adapter to Postgres)."""

from __future__ import annotations

import dataclasses
from importlib import resources
from typing import Any

import asyncpg

from .model import Artifact, Build, Dirty, Environment, Namespace, ReadModel, Specification

TABLES = (
    "namespaces",
    "environments",
    "specifications",
    "builds",
    "build_artifacts",
    "build_packages",
    "runtime_settings",
    "conda_channels",
    "conda_packages",
    "conda_package_builds",
    "update_checks",
)
PACKAGE_COLUMNS = (
    "manager",
    "name",
    "version",
    "build",
    "channel",
    "subdir",
    "url",
    "sha256",
    "md5",
    "size",
    "license",
    "summary",
)


async def create_tables(conn: asyncpg.Connection) -> None:
    """Apply the read-model DDL; serialized, since concurrent CREATE ... IF NOT EXISTS collide."""
    root = resources.files("shared.projections") / "sql"
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('cs_read_model_ddl'))")
        for name in sorted(p.name for p in root.iterdir() if p.name.endswith(".sql")):
            await conn.execute((root / name).read_text())


async def ensure_read_model(pool: asyncpg.Pool) -> None:
    """Tables for services that read the model (API, registry) before any projector ran; the
    projector creates them too, and a collision with it leaves them created all the same."""
    try:
        async with pool.acquire() as conn:
            await create_tables(conn)
    except asyncpg.PostgresError:
        pass


async def drop_tables(conn: asyncpg.Connection) -> None:
    await conn.execute(f"DROP TABLE IF EXISTS {', '.join(TABLES)}")


RowClass = type[Namespace] | type[Environment] | type[Specification] | type[Build]

NESTED = frozenset({"artifacts"})
"""Dataclass fields kept in a table of their own (a build's artifacts: ``build_artifacts``)."""


def columns_of(cls: RowClass) -> tuple[str, ...]:
    """A read-model table's columns: its dataclass's fields, by name (one change adds one)."""
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in NESTED)


def row_of(item: Any, columns: tuple[str, ...]) -> tuple[Any, ...]:
    return tuple(getattr(item, c) for c in columns)


def from_row(cls: RowClass, record: asyncpg.Record) -> Any:
    return cls(**{c: record[c] for c in columns_of(cls)})


async def load_model(conn: asyncpg.Connection) -> ReadModel:
    """The whole read model except package rows, which the fold only ever replaces."""
    model = ReadModel()
    for r in await conn.fetch("SELECT * FROM namespaces"):
        model.namespaces[r["name"]] = from_row(Namespace, r)
    for r in await conn.fetch("SELECT * FROM environments"):
        model.environments[(r["namespace"], r["name"])] = from_row(Environment, r)
    for r in await conn.fetch("SELECT * FROM specifications"):
        model.specifications[r["sha256"]] = from_row(Specification, r)
    for r in await conn.fetch("SELECT * FROM builds ORDER BY id"):
        model.add_build(from_row(Build, r))
    for r in await conn.fetch("SELECT * FROM build_artifacts"):
        build = model.builds.get(r["build_id"])
        if build is not None:
            build.artifacts[r["artifact_type"]] = Artifact(r["id"], r["artifact_type"], r["key"])
    for r in await conn.fetch("SELECT * FROM runtime_settings"):
        model.settings[r["level_key"]] = r["data"]
    for kind, table in (
        ("namespace", "namespaces"),
        ("environment", "environments"),
        ("specification", "specifications"),
        ("artifact", "build_artifacts"),
    ):
        model.next_ids[kind] = int(await conn.fetchval(f"SELECT coalesce(max(id), 0) FROM {table}"))
    v2 = [m["id"] for ns in model.namespaces.values() for m in ns.role_mappings_v2]
    model.next_ids["role_mapping_v2"] = max(v2, default=0)
    model.take_dirty()
    return model


def _upsert(table: str, columns: tuple[str, ...], key: str) -> str:
    cols = ", ".join(columns)
    params = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
    return (
        f"INSERT INTO {table} ({cols}) VALUES ({params}) "
        f"ON CONFLICT ({key}) DO UPDATE SET {updates}"
    )


def _package_rows(build_id: int, packages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            build_id,
            i,
            *(
                p.get(c, "" if c in ("build", "channel", "subdir", "url") else None)
                for c in PACKAGE_COLUMNS
            ),
        )
        for i, p in enumerate(packages)
    ]


async def _upsert_all(
    conn: asyncpg.Connection, table: str, cls: RowClass, items: list[Any]
) -> None:
    columns = columns_of(cls)
    await conn.executemany(_upsert(table, columns, "id"), [row_of(i, columns) for i in items])


async def write_dirty(conn: asyncpg.Connection, model: ReadModel, dirty: Dirty) -> None:
    """Write every row the fold touched; the caller wraps this in a transaction."""
    if dirty.namespaces:
        namespaces = [model.namespaces[k] for k in dirty.namespaces]
        await _upsert_all(conn, "namespaces", Namespace, namespaces)
    if dirty.environments:
        environments = [model.environments[k] for k in dirty.environments]
        await _upsert_all(conn, "environments", Environment, environments)
    if dirty.specifications:
        specifications = [model.specifications[k] for k in dirty.specifications]
        await _upsert_all(conn, "specifications", Specification, specifications)
    if dirty.builds:
        builds = [model.builds[k] for k in sorted(dirty.builds)]
        await _upsert_all(conn, "builds", Build, builds)
        ids = [b.id for b in builds]
        await conn.execute("DELETE FROM build_artifacts WHERE build_id = ANY($1)", ids)
        await conn.copy_records_to_table(
            "build_artifacts",
            records=[
                (a.id, b.id, a.artifact_type, a.key) for b in builds for a in b.artifacts.values()
            ],
            columns=("id", "build_id", "artifact_type", "key"),
        )
    if dirty.packages:
        await conn.execute(
            "DELETE FROM build_packages WHERE build_id = ANY($1)", list(dirty.packages)
        )
        await conn.copy_records_to_table(
            "build_packages",
            records=[
                row for bid, pkgs in dirty.packages.items() for row in _package_rows(bid, pkgs)
            ],
            columns=("build_id", "idx", *PACKAGE_COLUMNS),
        )
        await index_packages(conn, list(dirty.packages))
    if dirty.settings:
        await conn.executemany(
            _upsert("runtime_settings", ("level_key", "data"), "level_key"),
            [(k, model.settings[k]) for k in dirty.settings],
        )


async def index_packages(conn: asyncpg.Connection, build_ids: list[int]) -> None:
    """Add the conda packages of these builds to the distinct channel/package index.

    Ids come from sequences, so they are stable while the read model lives; a rebuild assigns
    them again in log order.
    """
    await conn.execute(
        "INSERT INTO conda_channels (name) SELECT DISTINCT channel FROM build_packages "
        "WHERE build_id = ANY($1) AND manager = 'conda' ORDER BY 1 ON CONFLICT DO NOTHING",
        build_ids,
    )
    await conn.execute(
        "INSERT INTO conda_packages (channel_id, name, version, license, summary) "
        "SELECT DISTINCT ON (c.id, p.name, p.version) c.id, p.name, p.version, p.license, "
        "p.summary FROM build_packages p JOIN conda_channels c ON c.name = p.channel "
        "WHERE p.build_id = ANY($1) AND p.manager = 'conda' "
        "ORDER BY c.id, p.name, p.version ON CONFLICT DO NOTHING",
        build_ids,
    )
