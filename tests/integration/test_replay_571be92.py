"""An event log written by commit 571be92 replays, with today's code, to the read model 571be92
built from it.

The log and read model in ``tests/fixtures/replay`` were recorded by running the old code
(``record_571be92.py`` says how): namespaces, role mappings, settings, tokens, completed,
failed, canceled, rebuilt and deleted builds, a lockfile, a pip section, images pushed and
failed, a parked message. Here the log goes into a fresh event store row for row, the
operator's ``conda-store-server rebuild-projections`` replays it, and every read-model column
571be92 had must come out equal. Columns added since are listed below, with what they must hold,
so that a change to any column fails here until it is listed too.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.embedded.postgres import PostgresCluster
from shared.eventstore import EventStore
from shared.projections.store import TABLES
from tests.fixtures.replay.snapshot import dump_events, dump_tables, load_events, read_jsonl
from tests.harness.processes import run_process

FIXTURE = Path(__file__).parent.parent / "fixtures" / "replay"
LOG = read_jsonl(FIXTURE / "log_571be92.jsonl")
RECORDED: dict[str, list[dict[str, Any]]] = json.loads(
    (FIXTURE / "read_model_571be92.json").read_text()
)["rebuilt"]

ADDED_TABLES: frozenset[str] = frozenset({"conda_package_builds", "update_checks"})
"""Read-model tables that 571be92 did not have. ``conda_package_builds`` is folded from
``ChannelIndexed``, which 571be92 never wrote (its solver kept channel records in a table of
its own), ``update_checks`` from update-check events, which did not exist: both must come out
empty; see test_tables_added_since_hold_only_what_the_log_says."""

ADDED_COLUMNS: dict[str, frozenset[str]] = {
    # ImagePushed / ImageFailed as a status of the build (571be92 only listed the manifest
    # as a DOCKER_MANIFEST artifact and ignored ImageFailed); see expected_image_columns.
    "builds": frozenset({"image_status", "image_reason", "image_digest"}),
}
"""Read-model columns that 571be92 did not have, by table."""


@dataclass
class Replayed:
    store: EventStore
    tables: dict[str, list[dict[str, Any]]]
    output: str


@pytest.fixture(scope="module")
async def replayed(pg_cluster: PostgresCluster) -> AsyncIterator[Replayed]:
    """The recorded log in a fresh store, replayed by the operator's command."""
    dsn = await pg_cluster.create_database("replay_571be92")
    store = await EventStore.connect(dsn)
    try:
        async with store.pool.acquire() as conn:
            await load_events(conn, LOG)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONDA_STORE_")}
        env["CONDA_STORE_DATABASE_URL"] = dsn
        cli = [sys.executable, "-m", "services.cli", "rebuild-projections"]
        result = await run_process(cli, env, timeout=120)
        assert result.code == 0, result.err
        async with store.pool.acquire() as conn:
            tables = await dump_tables(conn, sorted(RECORDED.keys() | ADDED_TABLES))
        yield Replayed(store, tables, result.out)
    finally:
        await store.close()


async def test_tables_added_since_hold_only_what_the_log_says(replayed: Replayed) -> None:
    assert replayed.tables["conda_package_builds"] == []
    assert replayed.tables["update_checks"] == []  # folded from events 571be92 never wrote


def events_of(build_id: int) -> list[dict[str, Any]]:
    return [e for e in LOG if e["stream"] == f"build-{build_id}"]


def expected_image_columns(build_id: int) -> dict[str, Any]:
    """What the added image columns hold, from the build's image events in the log."""
    status = reason = digest = None
    for event in events_of(build_id):
        if event["type"] == "ImagePushed":
            status, reason, digest = "PUSHED", None, event["data"]["manifest_digest"]
        elif event["type"] == "ImageFailed" and status != "PUSHED":
            status, reason = "FAILED", event["data"]["reason"]
    return {"image_status": status, "image_reason": reason, "image_digest": digest}


def without(row: dict[str, Any], columns: frozenset[str]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in columns}


async def test_the_recorded_log_is_stored_as_it_was_and_every_event_parses(
    replayed: Replayed,
) -> None:
    async with replayed.store.pool.acquire() as conn:
        assert await dump_events(conn) == LOG
    stored = await replayed.store.read_all(limit=len(LOG) + 1)
    assert [e.global_position for e in stored] == [e["global_position"] for e in LOG]
    for event in stored:
        payload = event.payload()  # old schema versions validate (or upcast) today
        assert payload.event_type() == event.type
    assert {e["schema_version"] for e in LOG} == {1}, "the log is all version 1, as 571be92 wrote"


async def test_rebuild_gives_the_read_model_571be92_built(replayed: Replayed) -> None:
    assert replayed.output.startswith(f"replayed {len(LOG)} events in "), replayed.output
    assert set(TABLES) == set(RECORDED) | ADDED_TABLES
    for table, old_rows in RECORDED.items():
        rows = replayed.tables[table]
        added = ADDED_COLUMNS.get(table, frozenset())
        old_columns = set(old_rows[0]) if old_rows else set()
        for row in rows:
            assert set(row) == old_columns | added, f"{table}: columns changed"
        assert [without(r, added) for r in rows] == old_rows, f"{table} differs"


async def test_columns_added_since_hold_what_the_log_says(replayed: Replayed) -> None:
    builds = replayed.tables["builds"]
    assert builds, "the fixture has builds"
    for row in builds:
        got = {k: row[k] for k in ADDED_COLUMNS["builds"]}
        assert got == expected_image_columns(row["id"]), row["id"]
    statuses = {row["image_status"] for row in builds}
    assert {"PUSHED", "FAILED", None} <= statuses, "the fixture covers every image outcome"
