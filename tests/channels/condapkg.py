"""Write real conda packages (`.conda` v2 and `.tar.bz2`) from a staged directory.

The tests cannot download packages from conda-forge, so they make their own. This module
writes the same on-disk formats conda and rattler read: an `info/` directory with
`index.json`, `paths.json`, `files`, `has_prefix`, `link.json` and `about.json`, archived as a
bzip2 tarball or as a `.conda` zip holding two zstd tarballs. Archives are reproducible
(sorted entries, fixed mtimes, uid/gid 0) so a cached channel hashes the same every time.

Text files that contain `PREFIX_PLACEHOLDER` are detected and recorded in `has_prefix` and
`paths.json`, so the installer rewrites them to the real prefix.
"""

from __future__ import annotations

import asyncio
import bz2
import concurrent.futures
import hashlib
import io
import json
import os
import stat
import tarfile
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import zstandard

PREFIX_PLACEHOLDER = "/opt/anaconda1anaconda2anaconda3_placeholder_prefix"
"""The placeholder conda-build records; installers replace it with the target prefix."""

PackageFormat = Literal[".conda", ".tar.bz2"]

_DEFAULT_TIMESTAMP_MS = 1_700_000_000_000


@dataclass
class PackageMeta:
    """What goes into `info/index.json` (and `link.json`/`about.json`) for one package.

    `subdir` is `noarch` whenever `noarch` is set; otherwise e.g. `linux-64`.
    `entry_points` (``"name = module:func"``) only make sense for `noarch="python"`.
    """

    name: str
    version: str
    build: str
    subdir: str = "linux-64"
    build_number: int = 0
    depends: list[str] = field(default_factory=list)
    constrains: list[str] = field(default_factory=list)
    noarch: Literal["python", "generic"] | None = None
    entry_points: list[str] = field(default_factory=list)
    license: str = "BSD-3-Clause"
    summary: str = ""
    timestamp_ms: int = _DEFAULT_TIMESTAMP_MS

    @property
    def filename_stem(self) -> str:
        """`name-version-build`, the conda archive name without extension."""
        return f"{self.name}-{self.version}-{self.build}"

    def index_json(self) -> dict[str, object]:
        """The `info/index.json` document; noarch packages carry no platform/arch."""
        doc: dict[str, object] = {
            "name": self.name,
            "version": self.version,
            "build": self.build,
            "build_number": self.build_number,
            "depends": sorted(self.depends),
            "constrains": sorted(self.constrains),
            "license": self.license,
            "subdir": self.subdir,
            "timestamp": self.timestamp_ms,
        }
        if self.noarch:
            doc["noarch"] = self.noarch
        else:
            platform, _, arch = self.subdir.partition("-")
            doc["platform"] = platform
            doc["arch"] = {"64": "x86_64", "aarch64": "aarch64"}.get(arch, arch)
        return doc


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _staged_entries(staging: Path) -> list[str]:
    """All files and symlinks below `staging` as sorted POSIX paths (directories are implicit)."""
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(staging):
        base = Path(dirpath)
        for name in list(dirnames):
            if (base / name).is_symlink():  # a symlink to a directory is a softlink entry
                found.append((base / name).relative_to(staging).as_posix())
                dirnames.remove(name)
        for name in filenames:
            found.append((base / name).relative_to(staging).as_posix())
    return sorted(found)


def _paths_entry(staging: Path, rel: str) -> tuple[dict[str, object], bool]:
    """One `paths.json` record, and whether the file carries the prefix placeholder."""
    path = staging / rel
    if path.is_symlink():
        entry: dict[str, object] = {"_path": rel, "path_type": "softlink"}
        if path.is_file():
            data = path.read_bytes()
            entry.update(sha256=_sha256(data), size_in_bytes=len(data))
        return entry, False
    data = path.read_bytes()
    entry = {
        "_path": rel,
        "path_type": "hardlink",
        "sha256": _sha256(data),
        "size_in_bytes": len(data),
    }
    has_placeholder = PREFIX_PLACEHOLDER.encode() in data
    if has_placeholder:
        if b"\0" in data:
            raise ValueError(f"{rel}: placeholder in a binary file is not supported here")
        entry.update(file_mode="text", prefix_placeholder=PREFIX_PLACEHOLDER)
    return entry, has_placeholder


def _info_files(meta: PackageMeta, staging: Path, entries: list[str]) -> dict[str, bytes]:
    """Render every `info/` file for the staged payload."""
    records = []
    with_prefix = []
    for rel in entries:
        record, has_placeholder = _paths_entry(staging, rel)
        records.append(record)
        if has_placeholder:
            with_prefix.append(rel)

    def dump(doc: object) -> bytes:
        return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()

    info: dict[str, bytes] = {
        "info/index.json": dump(meta.index_json()),
        "info/paths.json": dump({"paths": records, "paths_version": 1}),
        "info/files": "".join(f"{rel}\n" for rel in entries).encode(),
        "info/about.json": dump(
            {"summary": meta.summary or f"{meta.name} (test package)", "license": meta.license}
        ),
    }
    if with_prefix:
        info["info/has_prefix"] = "".join(
            f"{PREFIX_PLACEHOLDER} text {rel}\n" for rel in with_prefix
        ).encode()
    if meta.noarch == "python":
        link = {
            "noarch": {"type": "python", "entry_points": list(meta.entry_points)},
            "package_metadata_version": 1,
        }
        info["info/link.json"] = dump(link)
    return info


def _tarinfo(name: str, mtime: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _write_tar(
    out: Any,
    staging: Path,
    payload: Iterable[str],
    info: dict[str, bytes],
    mtime: int,
) -> None:
    """Stream a tar of `info` (in-memory) and `payload` (from `staging`) into `out`.

    `out` is any writable binary stream (a file, `BytesIO`, or a zstd stream writer).
    """
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(info.items()):
            ti = _tarinfo(name, mtime)
            ti.size = len(data)
            ti.mode = 0o644
            tar.addfile(ti, io.BytesIO(data))
        for rel in payload:
            path = staging / rel
            ti = _tarinfo(rel, mtime)
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                ti.type = tarfile.SYMTYPE
                ti.linkname = os.readlink(path)
                ti.mode = 0o777
                tar.addfile(ti)
                continue
            ti.size = st.st_size
            ti.mode = 0o755 if st.st_mode & 0o111 else 0o644
            with path.open("rb") as fh:
                tar.addfile(ti, fh)


def _zstd_tar(
    staging: Path, payload: Iterable[str], info: dict[str, bytes], mtime: int, level: int
) -> bytes:
    buf = io.BytesIO()
    cctx = zstandard.ZstdCompressor(level=level, threads=-1)
    with cctx.stream_writer(buf, closefd=False) as writer:
        _write_tar(writer, staging, payload, info, mtime)
    return buf.getvalue()


def build_package(
    meta: PackageMeta,
    staging: Path,
    out_dir: Path,
    fmt: PackageFormat = ".conda",
    *,
    zstd_level: int = 6,
) -> Path:
    """Archive the payload staged in `staging` as a conda package in `out_dir/<subdir>/`.

    Paths in `staging` are as they appear inside the package: `lib/...`, `bin/...`, or for
    noarch python `site-packages/...` and `python-scripts/...`. Returns the archive path.
    `zstd_level` trades size for speed (the realistic channel's python is ~60 MB raw).
    """
    if meta.noarch and meta.subdir != "noarch":
        raise ValueError(f"{meta.name}: noarch packages belong in the noarch subdir")
    entries = _staged_entries(staging) if staging.exists() else []
    info = _info_files(meta, staging, entries)
    mtime = meta.timestamp_ms // 1000
    target_dir = out_dir / meta.subdir
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / f"{meta.filename_stem}{fmt}"
    if fmt == ".tar.bz2":
        raw = io.BytesIO()
        _write_tar(raw, staging, entries, info, mtime)
        target.write_bytes(bz2.compress(raw.getvalue(), 9))
        return target
    stem = meta.filename_stem
    info_tar = _zstd_tar(staging, [], info, mtime, zstd_level)
    pkg_tar = _zstd_tar(staging, entries, {}, mtime, zstd_level)
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_STORED) as zf:
        members = [
            ("metadata.json", json.dumps({"conda_pkg_format_version": 2}).encode()),
            (f"info-{stem}.tar.zst", info_tar),
            (f"pkg-{stem}.tar.zst", pkg_tar),
        ]
        for name, data in members:
            zi = zipfile.ZipInfo(name, date_time=(2023, 11, 14, 22, 13, 20))
            zi.external_attr = 0o644 << 16
            zf.writestr(zi, data)
    return target


def write_file(staging: Path, rel: str, content: str | bytes, *, executable: bool = False) -> Path:
    """Stage one payload file (creating parent directories); a helper for hand-made packages."""
    path = staging / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    path.chmod(0o755 if executable else 0o644)
    return path


def index_channel(channel: Path) -> None:
    """Write `repodata.json` for every subdir with rattler's indexer (`noarch/` must exist).

    Synchronous so that session fixtures and plain scripts can call it; when the caller's
    thread already runs an event loop, the indexing runs on a helper thread instead. The short
    sleep lets rattler's tokio threads settle (toolchain.md: crash at interpreter exit).
    """
    from rattler.index import index_fs

    (channel / "noarch").mkdir(parents=True, exist_ok=True)

    async def run() -> None:
        await index_fs(channel, force=True)
        await asyncio.sleep(0.05)

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(run())
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, run()).result()
