"""The store directory on disk: build prefixes, the ``envs`` links, completeness, ownership.

conda-store's layout, which JupyterHub deployments mount (often over NFS)::

    <store>/<namespace>/<build key>/        one complete conda prefix per build
    <store>/<namespace>/envs/<name>         symlink to the current build's prefix

Two rules make every crash safe:

- A prefix is complete only once ``conda-meta/conda-store-build.json`` exists; the packer
  writes it last, atomically (a temporary file renamed into place). A directory without it is
  a half-written install that only the build's next attempt (or its failure) removes, and no
  link ever points at it.
- A link is switched by making a new symlink beside it and renaming it over the old one
  (``rename`` is atomic on POSIX filesystems, NFS included), so a reader sees the old or the
  new target, never none. A process that has files open in the old prefix keeps them.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import uuid
from dataclasses import dataclass
from pathlib import Path

from shared.build_path import build_path
from shared.events import SpecSubmitted
from shared.spec import build_key_v2

COMPLETE_MARKER = Path("conda-meta") / "conda-store-build.json"
ENVS = "envs"


def prefix_of(store: Path, namespace: str, build_key: str) -> Path:
    return build_path(store, namespace, build_key)


def prefix_of_build(store: Path, submitted: SpecSubmitted) -> Path:
    """Where the build of ``submitted`` lives (events without a build key get conda-store's)."""
    key = submitted.build_key or build_key_v2(
        submitted.sha256, submitted.scheduled_on, submitted.build_id, submitted.environment
    )
    return prefix_of(store, submitted.namespace, key)


def link_of(store: Path, namespace: str, environment: str) -> Path:
    """``<store>/<namespace>/envs/<name>``: what ``envs_dirs`` lists for nb_conda_kernels."""
    return store / namespace / ENVS / environment


def is_complete(prefix: Path) -> bool:
    return (prefix / COMPLETE_MARKER).is_file()


def mark_complete(
    prefix: Path, build_id: int, namespace: str, environment: str, owner: Ownership
) -> None:
    """The last write of a build: from here on the prefix may be linked."""
    marker = prefix / COMPLETE_MARKER
    tmp = marker.with_name(f".{marker.name}.{uuid.uuid4().hex}")
    body = {"build_id": build_id, "namespace": namespace, "environment": environment}
    tmp.write_text(json.dumps(body))
    _own(str(tmp), os.lstat(tmp), owner.mode(), _id(owner.uid), _id(owner.gid))
    os.replace(tmp, marker)


def switch_link(link: Path, target: Path) -> None:
    """Point ``link`` at ``target`` atomically (a fresh symlink renamed over the old one).

    The target is relative (``../<build key>``), so the store can be mounted anywhere.
    """
    link.parent.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(target, link.parent)
    if link.is_symlink() and os.readlink(link) == relative:
        return
    tmp = link.with_name(f".{link.name}.{uuid.uuid4().hex}")
    os.symlink(relative, tmp)
    try:
        os.replace(tmp, link)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def link_target(link: Path) -> Path | None:
    """The prefix ``link`` points at, or None without a link."""
    if not link.is_symlink():
        return None
    return (link.parent / os.readlink(link)).resolve(strict=False)


def remove_link(link: Path) -> None:
    if link.is_symlink():
        link.unlink(missing_ok=True)


def remove_prefix(prefix: Path) -> None:
    """Delete a prefix; its marker goes first, so a crash midway never leaves a complete-looking
    half. Hard links keep the package cache's copy of every file."""
    (prefix / COMPLETE_MARKER).unlink(missing_ok=True)
    shutil.rmtree(prefix, ignore_errors=True)


def remove_namespace_dir(store: Path, namespace: str) -> None:
    """Drop ``<store>/<namespace>`` (and its ``envs``) once nothing of it is left."""
    for path in (store / namespace / ENVS, store / namespace):
        try:
            path.rmdir()
        except OSError:
            return


@dataclass(frozen=True)
class Ownership:
    """conda-store's default_uid, default_gid and default_permissions."""

    uid: int | None = None
    gid: int | None = None
    permissions: str | None = None

    def mode(self) -> int | None:
        return int(self.permissions, 8) if self.permissions else None


def own_and_measure(prefix: Path, owner: Ownership) -> int:
    """``chown -R`` and ``chmod -R`` as conda-store does, touching only what differs, and the
    prefix's size as ``du -sb`` counts it (apparent sizes of every file, directory and
    symlink, each hard-linked inode once): one walk, as a large environment has tens of
    thousands of entries.

    The files are hard links into the shared package cache, so after the first build that
    holds a package its inodes already carry the right owner and mode: later builds only stat.
    Symlinks are left alone (their mode means nothing; chown would follow them).
    """
    mode, uid, gid = owner.mode(), _id(owner.uid), _id(owner.gid)
    seen: set[tuple[int, int]] = set()
    total = 0
    pending = [str(prefix)]
    while pending:  # scandir's entries, not os.walk's names joined and stat'ed again
        try:
            entries = os.scandir(pending.pop())
        except FileNotFoundError:
            continue
        with entries:
            for entry in entries:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                total += _counted(st, seen)
                _own(entry.path, st, mode, uid, gid)
                if stat.S_ISDIR(st.st_mode):
                    pending.append(entry.path)
    st = os.lstat(prefix)
    _own(str(prefix), st, mode, uid, gid)
    return total + st.st_size


def _counted(st: os.stat_result, seen: set[tuple[int, int]]) -> int:
    """``st``'s bytes, or 0 for an inode counted already."""
    if st.st_nlink > 1:
        key = (st.st_dev, st.st_ino)
        if key in seen:
            return 0
        seen.add(key)
    return st.st_size


def _id(value: int | None) -> int:
    return -1 if value is None else value


def _own(path: str, st: os.stat_result, mode: int | None, uid: int, gid: int) -> None:
    if stat.S_ISLNK(st.st_mode):
        return
    if (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid):
        os.chown(path, uid, gid)
    if mode is not None and (st.st_mode & 0o7777) != mode:
        os.chmod(path, mode)


def free_bytes(path: Path) -> int:
    """Free space of the volume that holds ``path`` (its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free
