"""Artifacts in an S3-compatible bucket (MinIO in compose, SeaweedFS in tests) via ``minio``.

The ``minio`` client is synchronous, so every call runs in a worker thread. Uploads of unknown
length go through multipart upload; ``minio`` assembles each part in memory, so an upload
peaks at roughly 3-4 x ``part_size`` (measured: ~17 MiB with 5 MiB parts) per parallel part,
whatever the object's size. Reads are streamed from the HTTP response in ``chunk_size`` pieces.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from minio import Minio
from minio.datatypes import Object
from minio.deleteobjects import DeleteObject
from minio.error import S3Error
from urllib3 import BaseHTTPResponse

from .base import (
    DEFAULT_CHUNK_SIZE,
    ArtifactInfo,
    ArtifactNotFound,
    InfoList,
    RangeNotSatisfiable,
)
from .keys import guess_content_type, validate_key, validate_prefix
from .ranges import check_range, is_ranged

DEFAULT_PART_SIZE = 16 << 20
_MISSING_CODES = frozenset({"NoSuchKey", "NoSuchObject", "ResourceNotFound", "NotFound"})
_BUCKET_EXISTS_CODES = frozenset({"BucketAlreadyOwnedByYou", "BucketAlreadyExists"})


def split_endpoint(endpoint: str, secure: bool) -> tuple[str, bool]:
    """Accept ``host:port`` or a URL; a URL's scheme decides TLS (``minio`` wants a bare host)."""
    if "://" not in endpoint:
        return endpoint, secure
    parts = urlsplit(endpoint)
    if parts.path not in ("", "/") or not parts.netloc:
        raise ValueError(f"S3 endpoint {endpoint!r} must be scheme://host[:port] with no path")
    return parts.netloc, parts.scheme == "https"


def _is_missing(exc: S3Error) -> bool:
    return exc.code in _MISSING_CODES


class _FullReads:
    """Make ``read(n)`` return exactly n bytes until EOF.

    ``minio`` assembles each part with repeated ``bytes +=``; a pipe or generator that returns
    small pieces would make that quadratic. Also counts the bytes for ``ArtifactInfo.size``.
    """

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            data = self._raw.read()
        else:
            pieces: list[bytes] = []
            wanted = size
            while wanted > 0:
                piece = self._raw.read(wanted)
                if not piece:
                    break
                pieces.append(piece)
                wanted -= len(piece)
            data = b"".join(pieces)
        self.count += len(data)
        return data


class S3ArtifactStore:
    """``ArtifactStore`` over one bucket; presigned URLs are signed for ``external_endpoint``.

    Browsers and ``conda`` clients may reach S3 under a different address than the services
    do (compose service name vs. public host), and a SigV4 signature covers the host, so a
    second client is configured only for signing links.
    """

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        *,
        region: str = "us-east-1",
        secure: bool = False,
        external_endpoint: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        parallel_uploads: int = 1,
    ) -> None:
        host, tls = split_endpoint(endpoint, secure)
        self.bucket = bucket
        self.region = region
        self.part_size = part_size
        self.parallel_uploads = parallel_uploads
        self._client = Minio(
            host, access_key=access_key, secret_key=secret_key, secure=tls, region=region
        )
        if external_endpoint:
            ext_host, ext_tls = split_endpoint(external_endpoint, secure)
            self._signer = Minio(
                ext_host,
                access_key=access_key,
                secret_key=secret_key,
                secure=ext_tls,
                region=region,
            )
        else:
            self._signer = self._client

    async def ensure_bucket(self) -> None:
        """Create the bucket if missing; explicit so that constructing a store does no I/O."""

        def run() -> None:
            if self._client.bucket_exists(self.bucket):
                return
            try:
                self._client.make_bucket(self.bucket, location=self.region)
            except S3Error as exc:
                if exc.code not in _BUCKET_EXISTS_CODES:
                    raise

        await asyncio.to_thread(run)

    # -- writes ------------------------------------------------------------------------------

    async def put_file(
        self, key: str, path: Path | str, content_type: str | None = None
    ) -> ArtifactInfo:
        """Upload a file; large files go up in ``part_size`` parts."""
        validate_key(key)
        ctype = content_type or guess_content_type(key)
        source = Path(path)

        def run() -> ArtifactInfo:
            size = source.stat().st_size
            result = self._client.fput_object(
                self.bucket,
                key,
                str(source),
                content_type=ctype,
                part_size=self.part_size,
                num_parallel_uploads=self.parallel_uploads,
            )
            return ArtifactInfo(key=key, size=size, etag=result.etag, content_type=ctype)

        return await asyncio.to_thread(run)

    async def put_stream(
        self, key: str, reader: BinaryIO, content_type: str | None = None
    ) -> ArtifactInfo:
        """Upload a reader of unknown length with multipart upload (one part in memory)."""
        validate_key(key)
        ctype = content_type or guess_content_type(key)
        counted = _FullReads(reader)

        def run() -> ArtifactInfo:
            result = self._client.put_object(
                self.bucket,
                key,
                counted,  # type: ignore[arg-type]
                length=-1,
                content_type=ctype,
                part_size=self.part_size,
                num_parallel_uploads=self.parallel_uploads,
            )
            return ArtifactInfo(key=key, size=counted.count, etag=result.etag, content_type=ctype)

        return await asyncio.to_thread(run)

    async def put_bytes(
        self, key: str, data: bytes, content_type: str | None = None
    ) -> ArtifactInfo:
        """Upload a small in-memory object in one request."""
        validate_key(key)
        ctype = content_type or guess_content_type(key)

        def run() -> ArtifactInfo:
            result = self._client.put_object(
                self.bucket, key, io.BytesIO(data), length=len(data), content_type=ctype
            )
            return ArtifactInfo(key=key, size=len(data), etag=result.etag, content_type=ctype)

        return await asyncio.to_thread(run)

    # -- reads -------------------------------------------------------------------------------

    def _get(self, key: str, headers: dict[str, str] | None = None) -> BaseHTTPResponse:
        try:
            return self._client.get_object(self.bucket, key, request_headers=headers)
        except S3Error as exc:
            if _is_missing(exc):
                raise ArtifactNotFound(key) from None
            raise

    async def get_bytes(self, key: str) -> bytes:
        """Read a small object whole; use ``open_stream`` for anything large."""
        validate_key(key)

        def run() -> bytes:
            response = self._get(key)
            try:
                return bytes(response.read())
            finally:
                response.close()
                response.release_conn()

        return await asyncio.to_thread(run)

    async def open_stream(
        self,
        key: str,
        start: int | None = None,
        end: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        """Yield the object (or the inclusive byte range ``start..end``) chunk by chunk.

        Close the iterator (``contextlib.aclosing``) when stopping early so the connection is
        dropped promptly instead of at garbage collection.
        """
        validate_key(key)
        check_range(start, end, chunk_size)
        headers = None
        if is_ranged(start, end):
            headers = {"Range": f"bytes={start or 0}-{'' if end is None else end}"}

        def open_response() -> BaseHTTPResponse:
            try:
                return self._get(key, headers)
            except S3Error as exc:
                if exc.code != "InvalidRange":
                    raise
            info = self._stat_sync(key)
            if info is None:
                raise ArtifactNotFound(key)
            raise RangeNotSatisfiable(start or 0, info.size)

        response = await asyncio.to_thread(open_response)
        try:
            while True:
                chunk = await asyncio.to_thread(response.read, chunk_size)
                if not chunk:
                    break
                yield chunk
        finally:
            response.close()
            response.release_conn()

    async def download_file(self, key: str, path: Path | str) -> None:
        """Stream an object to ``path`` (``minio`` writes a temp file and renames it)."""
        validate_key(key)
        target = Path(path)

        def run() -> None:
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._client.fget_object(self.bucket, key, str(target))
            except S3Error as exc:
                if _is_missing(exc):
                    raise ArtifactNotFound(key) from None
                raise

        await asyncio.to_thread(run)

    def _stat_sync(self, key: str) -> ArtifactInfo | None:
        try:
            obj = self._client.stat_object(self.bucket, key)
        except S3Error as exc:
            if _is_missing(exc):
                return None
            raise
        if obj.is_dir:
            return None
        return ArtifactInfo(
            key=key, size=obj.size or 0, etag=obj.etag, content_type=obj.content_type
        )

    async def stat(self, key: str) -> ArtifactInfo | None:
        """Size, ETag and Content-Type, or None if nothing is stored at ``key``."""
        validate_key(key)
        return await asyncio.to_thread(self._stat_sync, key)

    async def exists(self, key: str) -> bool:
        return await self.stat(key) is not None

    # -- deletes and listing -----------------------------------------------------------------

    async def delete(self, key: str) -> None:
        """Remove an object; S3 deletes are idempotent, so a missing key is fine."""
        validate_key(key)
        await asyncio.to_thread(self._client.remove_object, self.bucket, key)

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with ``prefix`` (batched multi-delete)."""
        validate_prefix(prefix, allow_empty=False)

        def run() -> int:
            keys = [info.key for info in self._list_sync(prefix)]
            errors = list(self._client.remove_objects(self.bucket, (DeleteObject(k) for k in keys)))
            if errors:
                raise RuntimeError(f"failed to delete {len(errors)} objects: {errors[:3]}")
            return len(keys)

        return await asyncio.to_thread(run)

    def _list_sync(self, prefix: str) -> InfoList:
        objects: list[Object] = list(
            self._client.list_objects(self.bucket, prefix=prefix or None, recursive=True)
        )
        found = [
            ArtifactInfo(key=str(obj.object_name), size=obj.size or 0, etag=obj.etag)
            for obj in objects
            if not obj.is_dir and obj.object_name
        ]
        found.sort(key=lambda info: info.key)
        return found

    async def list(self, prefix: str = "") -> InfoList:
        """Every object under ``prefix`` (plain string prefix), recursively, sorted by key."""
        validate_prefix(prefix)
        return await asyncio.to_thread(self._list_sync, prefix)

    # -- links -------------------------------------------------------------------------------

    async def presigned_url(self, key: str, expires: timedelta) -> str:
        """A SigV4 GET link for the external endpoint (no network call: the region is known)."""
        validate_key(key)
        return await asyncio.to_thread(
            self._signer.presigned_get_object, self.bucket, key, expires=expires
        )
