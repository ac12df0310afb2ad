"""Reusing the archive of an identical environment instead of packing it again.

A rebuild of an unchanged spec (conda-store's "rebuild", or the same spec in another
namespace) pins exactly the same files; its conda-pack archive would differ only in the build
prefix that ``conda-unpack`` rewrites anyway. So archives are kept on local disk under
``<data_dir>/cache/archives``, keyed by the pinned package set (conda URLs + hashes, pip URLs +
hashes), and a hit skips install and pack. The cache holds the ``MAX_ENTRIES`` most recently
used archives (hard links to the packed file, so a miss costs no copy).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

MAX_ENTRIES = 16
FORMAT = "archive-2"
"""Bump when the archive layout changes, so old entries stop matching (the salt of
``shared.lockfile.content_key``)."""


@dataclass(frozen=True)
class CachedArchive:
    path: Path
    size: int
    """The prefix size (``du -sb``) recorded when the archive was packed."""
    source_build: int


class ArchiveCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.tar.gz", self.root / f"{key}.json"

    def get(self, key: str) -> CachedArchive | None:
        archive, meta = self._paths(key)
        try:
            info = json.loads(meta.read_text())
            if not archive.is_file():
                return None
            os.utime(meta)  # most recently used
        except (FileNotFoundError, ValueError):
            return None
        return CachedArchive(archive, int(info["size"]), int(info["build_id"]))

    def put(self, key: str, packed: Path, size: int, build_id: int) -> None:
        """Keep ``packed`` (hard link, else copy) with its prefix size; best effort."""
        self.root.mkdir(parents=True, exist_ok=True)
        archive, meta = self._paths(key)
        tmp = self.root / f".{uuid.uuid4().hex}.tmp"
        try:
            try:
                os.link(packed, tmp)
            except OSError:
                import shutil

                shutil.copyfile(packed, tmp)
            os.replace(tmp, archive)
            tmp.write_text(json.dumps({"size": size, "build_id": build_id}))
            os.replace(tmp, meta)
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        self._prune()

    def _prune(self) -> None:
        metas = sorted(self.root.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True)
        for meta in metas[MAX_ENTRIES:]:
            for path in (meta, meta.with_suffix(".tar.gz")):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
