"""The artifact store contract: one small types module every backend and caller shares.

Services depend on ``ArtifactStore`` only, so the embedded single-machine default (a local
directory) and a real S3/MinIO deployment are interchangeable without touching callers.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

DEFAULT_CHUNK_SIZE = 1 << 20


class ArtifactNotFound(KeyError):
    """Raised by reads of a key that holds no object, so the API can answer 404 on any backend."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key

    def __str__(self) -> str:
        return f"no artifact stored at {self.key!r}"


class RangeNotSatisfiable(ValueError):
    """A byte range starting at or past the end of the object (HTTP 416)."""

    def __init__(self, start: int, size: int) -> None:
        super().__init__(f"range start {start} is beyond the object's {size} bytes")
        self.start = start
        self.size = size


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """What a caller may know about a stored object without reading it.

    ``etag`` is opaque (S3's ETag, or size+mtime for the local backend) and is meant for HTTP
    caching only. ``content_type`` is ``None`` in listings, which never fetch it.
    """

    key: str
    size: int
    etag: str | None = None
    content_type: str | None = None


InfoList = builtins.list[ArtifactInfo]


@runtime_checkable
class ArtifactStore(Protocol):
    """Async object storage for build artifacts, keyed by '/'-separated relative paths.

    Every method offloads blocking I/O to a thread; only the ``*_bytes`` helpers hold a whole
    object in memory, so use them for small files (specs, lockfiles) and the streaming methods
    for archives, logs and image layers.
    """

    async def put_file(
        self, key: str, path: Path | str, content_type: str | None = None
    ) -> ArtifactInfo: ...

    async def put_stream(
        self, key: str, reader: BinaryIO, content_type: str | None = None
    ) -> ArtifactInfo: ...

    async def put_bytes(
        self, key: str, data: bytes, content_type: str | None = None
    ) -> ArtifactInfo: ...

    async def get_bytes(self, key: str) -> bytes: ...

    def open_stream(
        self,
        key: str,
        start: int | None = None,
        end: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]: ...

    async def download_file(self, key: str, path: Path | str) -> None: ...

    async def stat(self, key: str) -> ArtifactInfo | None: ...

    async def exists(self, key: str) -> bool: ...

    async def delete(self, key: str) -> None: ...

    async def delete_prefix(self, prefix: str) -> int: ...

    async def list(self, prefix: str = "") -> InfoList: ...

    async def presigned_url(self, key: str, expires: timedelta) -> str: ...
