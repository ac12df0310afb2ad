"""Content-addressed blobs and image references in the artifact store.

Blobs (layers, configs, manifests) live at ``oci/blobs/sha256/<hex>`` and are shared by every
image, so each is stored once. An image reference, ``oci/refs/<ns>/<env>/<build_id>.json``,
lists the blobs one build's image needs; it is written *before* the blobs are uploaded so that
the garbage collector (which keeps every blob some reference lists) never removes a blob an
image being built is about to reuse.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg

from shared.artifacts import ArtifactInfo, ArtifactStore

BLOB_PREFIX = "oci/blobs/sha256/"
REFS_PREFIX = "oci/refs/"
STREAM_CHUNK = 4 << 20
"""Bytes per read when serving a blob: large enough that thread hops do not dominate."""
GC_LOCK_KEY = 0x0C1B_10B5
"""Postgres advisory lock: builders hold it shared while they reference blobs, GC exclusively."""


def blob_key(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    if algorithm != "sha256" or len(hexpart) != 64:
        raise ValueError(f"unsupported digest {digest!r}")
    return BLOB_PREFIX + hexpart


def digest_of_key(key: str) -> str:
    return "sha256:" + key.rsplit("/", 1)[-1]


@dataclass(frozen=True, slots=True)
class ImageRef:
    """What one build's image is made of (kept until the build or environment is deleted)."""

    build_id: int
    namespace: str
    environment: str
    manifest_digest: str
    blobs: tuple[str, ...]

    @property
    def key(self) -> str:
        return ref_key(self.namespace, self.environment, self.build_id)

    def to_json(self) -> bytes:
        data = asdict(self)
        data["blobs"] = list(self.blobs)
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> ImageRef:
        data = json.loads(raw)
        data["blobs"] = tuple(data["blobs"])
        return cls(**data)


def ref_key(namespace: str, environment: str, build_id: int) -> str:
    return f"{REFS_PREFIX}{namespace}/{environment}/{build_id}.json"


class Blobs:
    """The registry's view of the artifact store."""

    def __init__(self, artifacts: ArtifactStore) -> None:
        self.artifacts = artifacts

    async def stat(self, digest: str) -> ArtifactInfo | None:
        return await self.artifacts.stat(blob_key(digest))

    async def has(self, digest: str) -> bool:
        return await self.artifacts.exists(blob_key(digest))

    async def put_file(self, digest: str, path: Path) -> bool:
        """Upload unless already stored; True if it was uploaded."""
        if await self.has(digest):
            return False
        await self.artifacts.put_file(blob_key(digest), path, "application/octet-stream")
        return True

    async def put_bytes(self, digest: str, data: bytes, content_type: str) -> bool:
        if await self.has(digest):
            return False
        await self.artifacts.put_bytes(blob_key(digest), data, content_type)
        return True

    async def get_bytes(self, digest: str) -> bytes:
        return await self.artifacts.get_bytes(blob_key(digest))

    def stream(self, digest: str, start: int | None, end: int | None) -> AsyncIterator[bytes]:
        return self.artifacts.open_stream(blob_key(digest), start, end, chunk_size=STREAM_CHUNK)

    async def delete(self, digest: str) -> None:
        await self.artifacts.delete(blob_key(digest))

    async def all_digests(self) -> list[str]:
        return [digest_of_key(info.key) for info in await self.artifacts.list(BLOB_PREFIX)]

    # -- references --------------------------------------------------------------------------

    async def write_ref(self, ref: ImageRef) -> None:
        await self.artifacts.put_bytes(ref.key, ref.to_json(), "application/json")

    async def refs(self, prefix: str = "") -> list[ImageRef]:
        """References under ``oci/refs/<prefix>`` (e.g. ``ns/`` or ``ns/env/``)."""
        found = []
        for info in await self.artifacts.list(REFS_PREFIX + prefix):
            with contextlib.suppress(Exception):  # vanished or unreadable: not a live image
                found.append(ImageRef.from_json(await self.artifacts.get_bytes(info.key)))
        return found

    async def delete_ref(self, ref: ImageRef) -> None:
        await self.artifacts.delete(ref.key)


@contextlib.asynccontextmanager
async def gc_lock(pool: asyncpg.Pool, *, exclusive: bool) -> AsyncIterator[None]:
    """Session advisory lock that orders blob reuse (shared) against blob deletion."""
    fn = "pg_advisory_lock" if exclusive else "pg_advisory_lock_shared"
    unlock = "pg_advisory_unlock" if exclusive else "pg_advisory_unlock_shared"
    async with pool.acquire() as conn:
        await conn.execute(f"SELECT {fn}($1)", GC_LOCK_KEY)
        try:
            yield
        finally:
            await conn.execute(f"SELECT {unlock}($1)", GC_LOCK_KEY)
