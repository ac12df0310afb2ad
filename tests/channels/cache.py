"""Built channels kept between test runs, keyed by what they are built from.

Channels made from PyPI wheels take seconds to minutes to build, so each is built once per
machine into `$CONDA_STORE_TEST_CACHE/channels/<name>-<key>` (else
`~/.cache/conda-store-es/channels/`), where the key hashes the builder sources, the recipe (the
pins) and the interpreter. Callers get a copy whose package archives are hard links.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

HERE = Path(__file__).parent


def cache_base() -> Path:
    """Where built channels and downloaded wheels are kept between test runs."""
    env = os.environ.get("CONDA_STORE_TEST_CACHE")
    if env:
        return Path(env) / "channels"
    return Path.home() / ".cache" / "conda-store-es" / "channels"


def downloads_dir() -> Path:
    """The wheel download directory every cached channel shares (pip skips files it holds)."""
    return cache_base() / "wheel-downloads"


def recipe_key(sources: Iterable[str], *recipe: str) -> str:
    """Hash of what determines a channel: builder modules of this package (by file name), the
    recipe strings (e.g. pins) and the interpreter that is repackaged as `python`."""
    digest = hashlib.sha256()
    for name in sources:
        digest.update(name.encode() + b"\0" + (HERE / name).read_bytes())
    for part in recipe:
        digest.update(b"\0" + part.encode())
    digest.update(f"{sys.version}|{sys.base_prefix}|{platform.machine()}".encode())
    return digest.hexdigest()[:16]


def cached_build(name: str, key: str, build: Callable[[Path], None]) -> Path:
    """Return the cache entry `<name>-<key>`, calling `build(entry)` first if it is missing.

    The build fills a temporary sibling directory renamed into place at the end, so an
    interrupted build never leaves a half channel behind; a lock serialises parallel sessions
    (e.g. pytest-xdist workers) on the same entry.
    """
    base = cache_base()
    base.mkdir(parents=True, exist_ok=True)
    entry = base / f"{name}-{key}"
    if (entry / "complete").exists():
        return entry
    with open(base / f"{name}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (entry / "complete").exists():
            return entry
        for stale in base.glob(f"{name}-{key}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(entry, ignore_errors=True)
        tmp = base / f"{name}-{key}.tmp-{os.getpid()}"
        tmp.mkdir()
        started = time.monotonic()
        build(tmp)
        (tmp / "complete").write_text(f"built in {time.monotonic() - started:.1f} s\n")
        tmp.rename(entry)
    return entry


def materialise(src: Path, dst: Path) -> None:
    """Mirror `src` into `dst`: package archives and wheels hard-linked (copied across file
    systems), everything else copied so that re-indexing `dst` cannot alter the cache."""
    for path in sorted(src.rglob("*")):
        target = dst / path.relative_to(src)
        if path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() or target.is_symlink():
            target.unlink()  # e.g. a wheel directory shared by two channels
        if path.name.endswith((".conda", ".tar.bz2", ".whl")):
            try:
                os.link(path, target)
                continue
            except OSError:
                pass
        shutil.copy2(path, target)


def require_empty(root: Path) -> None:
    """Channels appear only in a missing or empty directory (never merged into another)."""
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty")
