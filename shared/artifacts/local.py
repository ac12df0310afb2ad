"""Artifacts in a local directory: the embedded single-machine default.

Objects are written to a staging file and moved into place with ``os.replace``, so a reader
(or a concurrent ``list``) sees either the old object or the complete new one, never a torn
write. Staging files live in ``<root>/.staging``, which is why keys under ``.staging/`` are
refused here.

Differences from S3 that callers may notice: an explicit ``content_type`` is not persisted
(``stat`` guesses it from the key's extension), and a key cannot be both an object and the
"directory" of other keys (``a`` and ``a/b``), because they are files and directories.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from shared.fileops import copy_into

from .base import DEFAULT_CHUNK_SIZE, ArtifactInfo, ArtifactNotFound, InfoList
from .keys import guess_content_type, validate_key, validate_prefix
from .ranges import check_range, range_length
from .signing import sign, verify_signature

__all__ = ["LocalArtifactStore", "verify_signature"]

STAGING_DIR = ".staging"
_MISSING = (FileNotFoundError, NotADirectoryError, IsADirectoryError)

# Writes the bytes of an object into an open staging file.
_Filler = Callable[[BinaryIO], object]


class LocalArtifactStore:
    """``ArtifactStore`` over a directory; presigned URLs are HMAC-signed ``/storage`` links."""

    def __init__(
        self,
        root: Path | str,
        base_url: str = "/storage",
        *,
        secret: bytes,
        fsync: bool = True,
    ) -> None:
        if not secret:
            raise ValueError("LocalArtifactStore needs a non-empty signing secret")
        self.root = Path(root).absolute()
        self.base_url = base_url.rstrip("/")
        self._secret = secret
        self._fsync = fsync

    # -- paths -------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        validate_key(key)
        if key.split("/", 1)[0] == STAGING_DIR:
            raise ValueError(f"artifact key {key!r} is reserved by the local backend")
        return self.root.joinpath(*key.split("/"))

    def _key_of(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _info(self, key: str, path: Path, *, with_type: bool) -> ArtifactInfo | None:
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not path.is_file():
            return None
        return ArtifactInfo(
            key=key,
            size=st.st_size,
            etag=f"{st.st_mtime_ns:x}-{st.st_size:x}",
            content_type=guess_content_type(key) if with_type else None,
        )

    # -- atomic writes -----------------------------------------------------------------------

    def _write_atomic(self, key: str, fill: _Filler, content_type: str | None) -> ArtifactInfo:
        def write(tmp: Path) -> None:
            with open(tmp, "wb") as out:
                fill(out)
                out.flush()
                if self._fsync:
                    os.fsync(out.fileno())

        return self._place(key, write, content_type)

    def _link_atomic(self, key: str, source: Path, content_type: str | None) -> ArtifactInfo | None:
        """``source`` linked in under ``key``; None when it cannot be (another filesystem)."""
        try:
            return self._place(key, lambda tmp: os.link(source, tmp), content_type)
        except OSError:
            return None

    def _place(
        self, key: str, make: Callable[[Path], None], content_type: str | None
    ) -> ArtifactInfo:
        """``make`` a file at a staging path, then move it to ``key`` in one rename."""
        target = self._path(key)
        staging = self.root / STAGING_DIR
        staging.mkdir(parents=True, exist_ok=True)
        tmp = staging / f"{uuid.uuid4().hex}.part"
        try:
            make(tmp)
            self._move_into_place(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        info = self._info(key, target, with_type=content_type is None)
        assert info is not None
        return info if content_type is None else replace(info, content_type=content_type)

    def _move_into_place(self, tmp: Path, target: Path) -> None:
        # A concurrent delete may prune the (empty) parent between mkdir and replace; retry.
        for attempt in range(5):
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                os.replace(tmp, target)
                return
            except FileNotFoundError:
                if attempt == 4:
                    raise

    def _prune_empty_parents(self, path: Path) -> None:
        """Remove directories emptied by a delete so listings and the tree stay tidy."""
        parent = path.parent
        while parent != self.root and self.root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                return
            parent = parent.parent

    # -- writes ------------------------------------------------------------------------------

    async def put_file(
        self, key: str, path: Path | str, content_type: str | None = None
    ) -> ArtifactInfo:
        """Put a file in: hard-linked when it is on the artifacts' filesystem (an archive of
        1 GB is not copied; every caller hands in a finished file it never writes again),
        else copied (streamed by the OS). ``content_type`` is not persisted locally."""
        source = Path(path)

        def fill(out: BinaryIO) -> None:
            with open(source, "rb") as src:
                copy_into(src, out)

        linked = await asyncio.to_thread(self._link_atomic, key, source, content_type)
        if linked is not None:
            return linked
        return await asyncio.to_thread(self._write_atomic, key, fill, content_type)

    async def put_stream(
        self, key: str, reader: BinaryIO, content_type: str | None = None
    ) -> ArtifactInfo:
        """Copy a reader of unknown length in 1 MiB chunks."""

        def fill(out: BinaryIO) -> None:
            copy_into(reader, out)

        return await asyncio.to_thread(self._write_atomic, key, fill, content_type)

    async def put_bytes(
        self, key: str, data: bytes, content_type: str | None = None
    ) -> ArtifactInfo:
        """Store a small in-memory object."""
        return await asyncio.to_thread(
            self._write_atomic, key, lambda out: out.write(data), content_type
        )

    # -- reads -------------------------------------------------------------------------------

    async def get_bytes(self, key: str) -> bytes:
        """Read a small object whole; use ``open_stream`` for anything large."""
        path = self._path(key)

        def read() -> bytes:
            try:
                return path.read_bytes()
            except _MISSING:
                raise ArtifactNotFound(key) from None

        return await asyncio.to_thread(read)

    async def open_stream(
        self,
        key: str,
        start: int | None = None,
        end: int | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        """Yield the object (or the inclusive byte range ``start..end``) chunk by chunk."""
        path = self._path(key)
        check_range(start, end, chunk_size)

        def open_at() -> tuple[BinaryIO, int]:
            try:
                handle = open(path, "rb")  # closed in the finally below
            except _MISSING:
                raise ArtifactNotFound(key) from None
            size = os.fstat(handle.fileno()).st_size
            try:
                remaining = range_length(start, end, size)
            except ValueError:
                handle.close()
                raise
            handle.seek(start or 0)
            return handle, remaining

        handle, remaining = await asyncio.to_thread(open_at)
        try:
            while remaining > 0:
                chunk = await asyncio.to_thread(handle.read, min(chunk_size, remaining))
                if not chunk:
                    break
                remaining -= len(chunk)
                yield chunk
        finally:
            await asyncio.to_thread(handle.close)

    async def download_file(self, key: str, path: Path | str) -> None:
        """Copy an object to ``path`` atomically (temp file beside it, then rename)."""
        source = self._path(key)
        target = Path(path)

        def copy() -> None:
            try:
                src = open(source, "rb")  # closed by the with below
            except _MISSING:
                raise ArtifactNotFound(key) from None
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
            try:
                with src, open(tmp, "wb") as out:
                    copy_into(src, out)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)

        await asyncio.to_thread(copy)

    async def stat(self, key: str) -> ArtifactInfo | None:
        """Size, etag and (guessed) content type, or None if nothing is stored at ``key``."""
        path = self._path(key)
        return await asyncio.to_thread(self._info, key, path, with_type=True)

    async def exists(self, key: str) -> bool:
        return await self.stat(key) is not None

    # -- deletes and listing -----------------------------------------------------------------

    def _delete_sync(self, path: Path) -> bool:
        try:
            path.unlink()
        except _MISSING:
            return False
        self._prune_empty_parents(path)
        return True

    async def delete(self, key: str) -> None:
        """Remove an object; a missing key is fine (deletes are idempotent, as in S3)."""
        path = self._path(key)
        await asyncio.to_thread(self._delete_sync, path)

    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose key starts with ``prefix``; returns how many were removed."""
        validate_prefix(prefix, allow_empty=False)

        def run() -> int:
            return sum(self._delete_sync(self.root / info.key) for info in self._list_sync(prefix))

        return await asyncio.to_thread(run)

    def _walk(self, prefix: str) -> Iterator[Path]:
        base = self.root.joinpath(*prefix.split("/")[:-1]) if "/" in prefix else self.root
        if not base.is_dir():
            return
        for dirpath, dirnames, filenames in os.walk(base):
            if Path(dirpath) == self.root and STAGING_DIR in dirnames:
                dirnames.remove(STAGING_DIR)
            for name in filenames:
                yield Path(dirpath, name)

    def _list_sync(self, prefix: str) -> InfoList:
        found: InfoList = []
        for path in self._walk(prefix):
            key = self._key_of(path)
            if not key.startswith(prefix):
                continue
            info = self._info(key, path, with_type=False)
            if info is not None:
                found.append(info)
        found.sort(key=lambda info: info.key)
        return found

    async def list(self, prefix: str = "") -> InfoList:
        """Every object under ``prefix`` (S3-style string prefix), recursively, sorted by key."""
        validate_prefix(prefix)
        return await asyncio.to_thread(self._list_sync, prefix)

    # -- links -------------------------------------------------------------------------------

    async def presigned_url(self, key: str, expires: timedelta) -> str:
        """A ``{base_url}/{key}?expires=..&signature=..`` link the API verifies and serves."""
        validate_key(key)
        expires_at = int(time.time() + expires.total_seconds())
        signature = sign(key, expires_at, self._secret)
        return f"{self.base_url}/{quote(key, safe='/')}?expires={expires_at}&signature={signature}"
