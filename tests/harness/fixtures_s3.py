"""Artifact-store fixtures: one real S3 server per session, a fresh bucket per test.

A bucket per test (rather than a prefix) means a test can list or delete "everything" and
still be isolated; the bucket is emptied and removed afterwards.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from minio.deleteobjects import DeleteObject

from shared.artifacts import LocalArtifactStore, S3ArtifactStore
from tests.harness.s3server import S3Server


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    server = S3Server()
    server.start()
    yield server
    server.stop()


def _drop_bucket(server: S3Server, bucket: str) -> None:
    client = server.client()
    names = (
        DeleteObject(str(obj.object_name))
        for obj in client.list_objects(bucket, recursive=True)
        if not obj.is_dir
    )
    errors = list(client.remove_objects(bucket, names))
    if errors:
        raise RuntimeError(f"could not empty test bucket {bucket}: {errors[:3]}")
    client.remove_bucket(bucket)


@pytest.fixture
async def s3_artifact_store(s3_server: S3Server) -> AsyncIterator[S3ArtifactStore]:
    bucket = f"test-{uuid.uuid4().hex[:20]}"
    store = S3ArtifactStore(
        s3_server.endpoint,
        s3_server.access_key,
        s3_server.secret_key,
        bucket,
        region=s3_server.region,
    )
    await store.ensure_bucket()
    yield store
    await asyncio.to_thread(_drop_bucket, s3_server, bucket)


@pytest.fixture
def local_artifact_store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(tmp_path / "artifacts", "/storage", secret=os.urandom(32))
