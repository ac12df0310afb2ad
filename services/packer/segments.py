"""conda-pack archives assembled from per-package gzip members, each compressed once per host.

Packing dominated every build: the same CPython and numpy files were compressed again for each
environment that contained them. A ``.tar.gz`` is a tar stream inside gzip; gzip allows the
stream to be several members back to back and tar entries are 512-byte aligned, so the archive
can be cut at file boundaries. Every file conda-pack takes from the package cache (rather than
from the prefix) is the same bytes in every environment that installs that package, so its
compressed tar entries are kept under ``<cache>/<key>.gz`` and reused. Only what belongs to
one build — conda-meta records, files made at install time (noarch ``.pyc``, entry points),
pip's files and ``conda-unpack`` with its prefix list — is compressed for each build.

Compression is gzip by ISA-L at its level 2 (``shared.gzip_stream``, the image layers' too):
packing was the CPU bottleneck of every build on a small machine.

conda-pack itself decides every entry: its ``CondaEnv`` lists the files and its ``Packer``
writes them (prefix records, shebang rewriting, activate scripts, ``conda-unpack``) through
conda-pack's own tar writer, so the archive unpacks exactly like one from ``conda_pack.pack``.

Several packers (threads, processes, hosts sharing the data dir) may need the same package at
once: an ``flock`` per package makes one of them compress it while the others pack what they
can and then wait for it, so each package is compressed once.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from conda_pack.core import CondaEnv, File, Packer
from conda_pack.formats import TarArchive

from shared.fileops import copy_into
from shared.gzip_stream import FAST_LEVEL, gzip_writer

FORMAT = 2
"""Bump when the member layout changes, so old cache entries stop matching."""

CHUNK_BYTES = 8 * 1024 * 1024
"""Files per gzip member, by size: big packages split so that threads compress them in
parallel."""

COPY_BUFFER = 1024 * 1024

PrefixRecord = tuple[str, str, str]
"""conda-unpack's ``(path, placeholder, mode)`` for a file whose prefix it rewrites."""


@dataclass
class PackStats:
    """What a pack did, for the build log."""

    reused: list[str] = field(default_factory=list)
    compressed: list[str] = field(default_factory=list)
    waited: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        def names(items: list[str]) -> str:
            shown = ", ".join(items[:8])
            return shown + (f" and {len(items) - 8} more" if len(items) > 8 else "")

        parts = [f"{len(self.reused)} package segments reused"]
        if self.reused:
            parts[-1] += f" ({names(self.reused)})"
        parts.append(f"{len(self.compressed)} compressed")
        if self.compressed:
            parts[-1] += f" ({names(self.compressed)})"
        if self.waited:
            parts.append(f"{len(self.waited)} awaited from another packer ({names(self.waited)})")
        return "; ".join(parts)


@dataclass
class Segment:
    """The files one package contributes, and the key its compressed member is kept under."""

    name: str
    key: str
    files: list[File]


class _Member(TarArchive):
    """conda-pack's tar writer on one gzip member of its own file.

    Only the last member ends with tar's end-of-archive blocks: a reader stops at the first.
    """

    def __init__(self, path: Path, level: int, mtime: int, last: bool) -> None:
        self._raw = open(path, "wb")  # closed in __exit__
        self._gzip = gzip_writer(self._raw, level)
        super().__init__(self._gzip, arcroot="", close_file=False, mode="w", mtime=mtime)
        self._last = last

    def __enter__(self) -> _Member:
        super().__enter__()
        self.archive.copybufsize = COPY_BUFFER
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self._last:
                self.archive.close()
            self._gzip.close()
        finally:
            self._raw.close()


def _write_member(prefix: str, files: Sequence[File], path: Path) -> list[PrefixRecord]:
    """``files`` through conda-pack's Packer into one (not last) member; returns their prefix
    records."""
    with _Member(path, FAST_LEVEL, mtime=0, last=False) as member:
        packer = Packer(prefix, member)
        for f in files:
            packer.add(f)
    return [tuple(r) for r in packer.prefixes]  # type: ignore[misc]


def _chunks(files: Sequence[File]) -> Iterator[list[File]]:
    chunk: list[File] = []
    size = 0
    for f in files:
        with contextlib.suppress(OSError):
            size += os.lstat(f.source).st_size
        chunk.append(f)
        if size >= CHUNK_BYTES:
            yield chunk
            chunk, size = [], 0
    if chunk:
        yield chunk


def _package_dirs(prefix: Path) -> dict[str, dict[str, Any]]:
    """Extracted package directory → its conda-meta record, for every linked package."""
    dirs: dict[str, dict[str, Any]] = {}
    for meta in sorted((prefix / "conda-meta").glob("*.json")):
        record = json.loads(meta.read_text())
        source = (record.get("link") or {}).get("source")
        if source and os.path.isdir(source):
            dirs[os.path.normpath(source)] = record
    return dirs


def _segment_key(record: dict[str, Any], pkg_dir: str, files: Sequence[File]) -> str:
    """Identity of a package's member: the package archive's hash and where each file goes."""
    entries = [
        (os.path.relpath(f.source, pkg_dir), f.target, f.file_mode, f.prefix_placeholder)
        for f in files
    ]
    doc = {
        "format": FORMAT,
        "package": record.get("sha256") or record.get("md5") or record.get("url"),
        "fn": os.path.basename(pkg_dir),
        "files": entries,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def split_files(prefix: Path, files: Sequence[File]) -> tuple[list[Segment], list[File]]:
    """Files taken from the package cache, by package; the rest belong to this build only."""
    dirs = _package_dirs(prefix)
    by_dir: dict[str, list[File]] = {}
    own: list[File] = []
    last: str | None = None
    for f in files:
        source = os.path.normpath(f.source)
        owner = None
        if last is not None and source.startswith(last + os.sep):
            owner = last
        else:
            owner = next((d for d in dirs if source.startswith(d + os.sep)), None)
        if owner is None:
            own.append(f)
            continue
        last = owner
        by_dir.setdefault(owner, []).append(f)
    segments = [
        Segment(dirs[d].get("name", os.path.basename(d)), _segment_key(dirs[d], d, fs), fs)
        for d, fs in by_dir.items()
    ]
    return segments, own


class SegmentCache:
    """``<key>.gz`` (the member) and ``<key>.json`` (its prefix records), written atomically."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def member(self, key: str) -> Path:
        return self.root / f"{key}.gz"

    def open_entry(self, key: str) -> tuple[BinaryIO, list[PrefixRecord]] | None:
        """The member, opened (so a prune cannot take it away mid-copy), and its records; or
        None when there is no complete entry. Marks the entry as recently used."""
        try:
            member = open(self.member(key), "rb")  # the caller closes it
        except FileNotFoundError:
            return None
        try:
            records = json.loads((self.root / f"{key}.json").read_text())
        except (FileNotFoundError, ValueError):
            member.close()
            return None
        with contextlib.suppress(OSError):
            os.utime(self.member(key))
        return member, [tuple(r) for r in records]  # type: ignore[misc]

    def prune(self, max_bytes: int) -> int:
        """Delete least recently used entries until the members fit in 90% of ``max_bytes``;
        returns the bytes freed. An entry being written or awaited (its lock held) is kept;
        one being copied stays readable through the copier's open file."""
        entries = []
        for member in self.root.glob("*.gz"):
            with contextlib.suppress(FileNotFoundError):
                st = member.stat()
                entries.append((st.st_mtime, st.st_size, member.name[: -len(".gz")]))
        total = sum(size for _, size, _ in entries)
        if total <= max_bytes:
            return 0
        freed = 0
        for _, size, key in sorted(entries):
            if total - freed <= max_bytes * 0.9:
                break
            with self.lock(key, wait=False) as held:
                if not held:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    self.member(key).unlink()  # the member first: no member, no entry
                    freed += size
                with contextlib.suppress(FileNotFoundError):
                    (self.root / f"{key}.json").unlink()
        return freed

    def put(self, key: str, parts: Sequence[Path], records: list[PrefixRecord]) -> None:
        """The records first, the member last: a member on disk means a complete entry."""
        tmp = self.root / f".{uuid.uuid4().hex}.tmp"
        try:
            tmp.write_text(json.dumps(records))
            os.replace(tmp, self.root / f"{key}.json")
            with open(tmp, "wb") as out:
                for part in parts:
                    with open(part, "rb") as src:
                        copy_into(src, out)
            os.replace(tmp, self.member(key))
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    @contextlib.contextmanager
    def lock(self, key: str, wait: bool) -> Iterator[bool]:
        """Hold the package's lock (``True``), or ``False`` when busy and not ``wait``."""
        fd = os.open(self.root / f"{key}.lock", os.O_CREAT | os.O_RDWR, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)  # releases the lock


class _SegmentPacker:
    """One archive's work: reuse, compress (in ``n_threads`` threads) or await each member."""

    def __init__(self, prefix: Path, cache: SegmentCache, work: Path, n_threads: int) -> None:
        self.prefix = str(prefix)
        self.cache = cache
        self.work = work
        self.pool = ThreadPoolExecutor(max_workers=max(1, n_threads))
        self.mtime = _archive_mtime(prefix)
        self.stats = PackStats()

    def _submit(self, files: Sequence[File]) -> list[tuple[Path, Future[list[PrefixRecord]]]]:
        jobs = []
        for chunk in _chunks(files):
            path = self.work / f"{uuid.uuid4().hex}.gz"
            jobs.append((path, self.pool.submit(_write_member, self.prefix, chunk, path)))
        return jobs

    def _finish(
        self, segment: Segment, jobs: list[tuple[Path, Future[list[PrefixRecord]]]]
    ) -> None:
        records = [r for _, job in jobs for r in job.result()]
        self.cache.put(segment.key, [p for p, _ in jobs], records)
        for p, _ in jobs:
            p.unlink()

    def pack(self, segments: list[Segment], own: list[File], output: Path) -> PackStats:
        started = time.monotonic()
        own_jobs = self._submit(own)
        with contextlib.ExitStack() as opened:
            entries: dict[str, tuple[BinaryIO, list[PrefixRecord]]] = {}

            def take(seg: Segment) -> bool:
                entry = self.cache.open_entry(seg.key)
                if entry is not None:
                    opened.callback(entry[0].close)
                    entries[seg.key] = entry
                return entry is not None

            def compress(seg: Segment, jobs: list[tuple[Path, Future[list[PrefixRecord]]]]) -> None:
                self._finish(seg, jobs)
                self.stats.compressed.append(seg.name)
                if not take(seg):  # only we could have removed it: we hold its lock
                    raise RuntimeError(f"pack segment of {seg.name} vanished after writing")

            busy: list[Segment] = []
            with contextlib.ExitStack() as held:
                mine = []
                for seg in segments:
                    if take(seg):
                        self.stats.reused.append(seg.name)
                    elif held.enter_context(self.cache.lock(seg.key, wait=False)):
                        if take(seg):  # finished while we looked
                            self.stats.reused.append(seg.name)
                        else:
                            mine.append((seg, self._submit(seg.files)))
                    else:
                        busy.append(seg)
                for seg, jobs in mine:
                    compress(seg, jobs)
            for seg in busy:  # another packer is compressing it: wait, or do it if it died
                with self.cache.lock(seg.key, wait=True):
                    if take(seg):
                        self.stats.waited.append(seg.name)
                    else:
                        compress(seg, self._submit(seg.files))

            records = [r for seg in segments for r in entries[seg.key][1]]
            for _, job in own_jobs:
                records.extend(job.result())
            last = self.work / "last.gz"
            self._write_last(last, records)

            with open(output, "wb") as out:
                for seg in segments:
                    copy_into(entries[seg.key][0], out)
                for part in [*(p for p, _ in own_jobs), last]:
                    with open(part, "rb") as src:
                        copy_into(src, out)
        self.stats.seconds = time.monotonic() - started
        return self.stats

    def _write_last(self, path: Path, records: list[PrefixRecord]) -> None:
        """conda-pack's closing entries (activate scripts, conda-unpack with every record)."""
        with _Member(path, FAST_LEVEL, self.mtime, last=True) as member:
            packer = Packer(self.prefix, member)
            packer.prefixes = list(records)
            packer.finish()

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


def _archive_mtime(prefix: Path) -> int:
    """conda-pack stamps ``conda-unpack`` with the history file's time, as it does."""
    try:
        return int((prefix / "conda-meta" / "history").lstat().st_mtime)
    except FileNotFoundError:
        return int(time.time())


def pack_segmented(prefix: Path, output: Path, cache_dir: Path, n_threads: int) -> PackStats:
    """Write ``prefix`` as a conda-pack ``.tar.gz`` at ``output``, reusing package members."""
    env = CondaEnv.from_prefix(str(prefix), ignore_missing_files=True)
    segments, own = split_files(prefix, env.files)
    cache = SegmentCache(cache_dir)
    output.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".pack-", dir=output.parent) as work:
        packer = _SegmentPacker(prefix, cache, Path(work), n_threads)
        try:
            return packer.pack(segments, own, output)
        finally:
            packer.close()
