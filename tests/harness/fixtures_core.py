"""Throwaway Postgres and NATS servers on free ports; each test gets its own database and NATS."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared.embedded.nats import NatsServer
from shared.embedded.postgres import PostgresCluster
from shared.eventstore import EventStore
from shared.settings import Settings

_db_counter = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    root = Path(tempfile.mkdtemp(prefix="cs-pg-"))
    cluster = PostgresCluster(root / "data", fast=True)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
async def database_url(pg_cluster: PostgresCluster) -> str:
    return await pg_cluster.create_database(f"test_{next(_db_counter)}")


@pytest.fixture
async def event_store(database_url: str) -> AsyncIterator[EventStore]:
    store = await EventStore.connect(database_url, max_size=20)
    yield store
    await store.close()


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsServer]:
    server = NatsServer(tmp_path / "nats")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path: Path, database_url: str, nats_server: NatsServer) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        nats_url=nats_server.url,
        consumer_ack_wait_s=5.0,
        consumer_max_deliver=3,
        update_check_interval_s=0,  # tests that want the schedule run it themselves
    )
