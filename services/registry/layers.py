"""Reproducible layer tarballs: the same files always give the same bytes and digests.

Entries are sorted by path; owner, group and mtime are zeroed; user and group names are empty;
hard links are written as plain files; gzip (ISA-L's, ``shared.gzip_stream``, as fast as the
packer's archives) carries no name and mtime 0. Both the
uncompressed digest (the config's ``diff_id``) and the compressed one (the blob digest) are
computed while the layer streams to disk, so no layer is ever held in memory.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from shared.gzip_stream import FAST_LEVEL, gzip_writer

TAR_ENCODING = "utf-8"
"""Names are encoded as ``tarfile`` does on this platform (its filesystem encoding)."""

DIR_MODE = 0o755


@dataclass(frozen=True, slots=True)
class Entry:
    """One path in a layer: copied from ``source`` (file, symlink or dir), or an explicit item.

    ``arcname`` is relative to the image root (``opt/conda/bin/python``). ``symlink`` makes a
    symbolic link with that target; ``data`` a regular file with that content; with neither
    and no ``source`` the entry is a directory.
    """

    arcname: str
    source: Path | None = None
    symlink: str | None = None
    data: bytes | None = None
    mode: int | None = None


@dataclass(frozen=True, slots=True)
class LayerBlob:
    """A finished layer on local disk, ready to upload under ``digest``."""

    path: Path
    digest: str
    diff_id: str
    size: int


CHUNK = 1 << 20
"""The tar stream goes to the hash and the compressor in pieces of exactly this size: few
calls (each releasing the GIL for long) instead of tarfile's 10 KiB records, and the same
pieces for the same bytes, so the compressed digest is reproducible."""


class _LayerStream:
    """The uncompressed tar stream of one layer: hashed (``diff_id``), then gzip'd, hashed
    again (the blob digest) and written to ``raw``, in ``CHUNK``-sized pieces."""

    def __init__(self, raw: BinaryIO, level: int) -> None:
        self.compressed = _Counted(raw)
        self.gzip = gzip_writer(self.compressed, level)
        self.plain = hashlib.sha256()
        self.buffer = bytearray()
        self.offset = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.buffer += data
        self.offset += len(data)
        if len(self.buffer) >= CHUNK:
            view = memoryview(self.buffer)
            full = len(self.buffer) - len(self.buffer) % CHUNK
            for start in range(0, full, CHUNK):
                self._emit(view[start : start + CHUNK])
            view.release()
            del self.buffer[:full]

    def copy(self, source: BinaryIO, size: int, name: str) -> None:
        """``size`` bytes of ``source`` (tarfile's rule: a file that shrank is an error)."""
        left = size
        while left:
            data = source.read(min(left, CHUNK))
            if not data:
                raise OSError(f"{name}: file changed size while writing its layer")
            self.write(data)
            left -= len(data)

    def _emit(self, piece: memoryview | bytearray) -> None:
        self.plain.update(piece)
        self.gzip.write(piece)

    def close(self) -> None:
        if self.buffer:
            self._emit(self.buffer)
            self.buffer.clear()
        self.gzip.close()


class _Counted:
    """Where the compressed bytes go: hashed and counted on their way to ``inner``."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        self.inner.write(data)
        return len(data)

    def flush(self) -> None:
        self.inner.flush()


def _parents(arcname: str) -> list[str]:
    parts = arcname.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def with_parents(entries: Iterable[Entry]) -> list[Entry]:
    """Add a directory entry for every missing parent, then sort by path.

    Parents are listed explicitly so that extractors that do not create them (or create them
    with odd modes) still get a well-formed tree.
    """
    by_name: dict[str, Entry] = {}
    for entry in entries:
        by_name[entry.arcname.strip("/")] = entry
    for name in list(by_name):
        for parent in _parents(name):
            by_name.setdefault(parent, Entry(parent))
    return [by_name[name] for name in sorted(by_name)]


def _tarinfo(entry: Entry) -> tuple[tarfile.TarInfo, BinaryIO | None]:
    info = tarfile.TarInfo(entry.arcname)
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = 0
    if entry.symlink is not None:
        info.type = tarfile.SYMTYPE
        info.linkname = entry.symlink
        info.mode = 0o777
        return info, None
    if entry.data is not None:
        info.size = len(entry.data)
        info.mode = entry.mode if entry.mode is not None else 0o644
        return info, io.BytesIO(entry.data)
    if entry.source is None:
        info.type = tarfile.DIRTYPE
        info.mode = entry.mode if entry.mode is not None else DIR_MODE
        return info, None
    st = entry.source.lstat()
    if stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(entry.source)
        info.mode = 0o777
        return info, None
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
        info.mode = stat.S_IMODE(st.st_mode)
        return info, None
    info.mode = entry.mode if entry.mode is not None else stat.S_IMODE(st.st_mode)
    info.size = st.st_size
    return info, open(entry.source, "rb")  # closed by write_layer


def write_layer(entries: Iterable[Entry], out_path: Path, level: int = FAST_LEVEL) -> LayerBlob:
    """Write a gzip'd tar of ``entries`` (parents added, sorted) to ``out_path``.

    The tar bytes are those of ``tarfile`` in PAX format (its headers, its padding, its end
    of archive), written here rather than through ``TarFile.addfile``, whose per-record
    writes and per-member copies cost more than the compression on a layer of many files.
    """
    with open(out_path, "wb") as raw:
        stream = _LayerStream(raw, level)
        for entry in with_parents(entries):
            info, source = _tarinfo(entry)
            try:
                stream.write(info.tobuf(tarfile.PAX_FORMAT, TAR_ENCODING, "surrogateescape"))
                if source is not None:
                    stream.copy(source, info.size, info.name)
                    stream.write(bytes(-info.size % tarfile.BLOCKSIZE))
            finally:
                if source is not None:
                    source.close()
        stream.write(bytes(2 * tarfile.BLOCKSIZE))
        stream.write(bytes(-stream.offset % tarfile.RECORDSIZE))
        stream.close()
    return LayerBlob(
        path=out_path,
        digest="sha256:" + stream.compressed.hash.hexdigest(),
        diff_id="sha256:" + stream.plain.hexdigest(),
        size=stream.compressed.size,
    )
