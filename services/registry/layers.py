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


class _HashingWriter(io.RawIOBase):
    """A write-only stream that hashes and counts what passes through to ``inner``."""

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.hash.update(data)
        self.size += len(data)
        self.inner.write(data)
        return len(data)


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
    """Write a gzip'd tar of ``entries`` (parents added, sorted) to ``out_path``."""
    with open(out_path, "wb") as raw:
        compressed = _HashingWriter(raw)
        with gzip_writer(compressed, level) as gz:
            plain = _HashingWriter(gz)  # type: ignore[arg-type]
            with tarfile.open(fileobj=plain, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                for entry in with_parents(entries):
                    info, stream = _tarinfo(entry)
                    try:
                        tar.addfile(info, stream)
                    finally:
                        if stream is not None:
                            stream.close()
    return LayerBlob(
        path=out_path,
        digest="sha256:" + compressed.hash.hexdigest(),
        diff_id="sha256:" + plain.hash.hexdigest(),
        size=compressed.size,
    )
