"""Which files go into which layer: one layer per conda package, then the rest.

Packages are cut along ``conda-meta/<pkg>.json`` (the ``files`` list), so a package installed
in two environments becomes the same layer blob in both: same prefix, same bytes. What no
package owns (``conda-meta`` itself, rattler's ``CACHEDIR.TAG``, files made by link scripts)
goes into a final, environment-specific layer.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .layers import Entry

MAX_PACKAGE_LAYERS = 100
"""Overlay filesystems stack ~128 layers at most; the smallest packages share the last one."""

FORMAT_VERSION = "3"
"""Bump when the layer bytes for the same input would change (tar format, gzip level...):
3 is the same tar compressed in 1 MiB pieces (``layers.CHUNK``), 2 was ISA-L gzip at level 2
in tarfile's 10 KiB records, 1 was zlib at level 6."""


@dataclass(frozen=True, slots=True)
class PackageLayer:
    name: str
    version: str
    build: str
    files: tuple[str, ...]
    size: int
    cache_key: str

    @property
    def label(self) -> str:
        return f"{self.name}={self.version}={self.build}"


@dataclass(slots=True)
class LayerPlan:
    packages: list[PackageLayer] = field(default_factory=list)
    """The packages that get a layer of their own."""
    rest: list[str] = field(default_factory=list)
    """Files of the final layer: the other packages' and those no package owns."""
    all_packages: list[str] = field(default_factory=list)
    installed: list[PackageLayer] = field(default_factory=list)
    """Every installed package, with or without its own layer."""
    unowned: list[str] = field(default_factory=list)
    """Files no package owns (conda-meta, link-script and pip output)."""

    def file_names(self) -> set[str]:
        """The base name of every file in the prefix."""
        paths = [*self.unowned, *(f for p in self.installed for f in p.files)]
        return {os.path.basename(p) for p in paths}


def _package_key(meta: dict, image_prefix: str, files: list[str]) -> str:  # type: ignore[type-arg]
    """Identifies the layer bytes: package identity, every installed file's digest, prefix."""
    paths = meta.get("paths_data", {}).get("paths", [])
    summary = [
        FORMAT_VERSION,
        image_prefix,
        meta.get("sha256") or meta.get("md5") or "",
        meta.get("url", ""),
        files,
        sorted(
            (
                p.get("_path"),
                p.get("path_type"),
                p.get("sha256_in_prefix") or p.get("sha256"),
                p.get("size_in_bytes"),
            )
            for p in paths
        ),
    ]
    return hashlib.sha256(json.dumps(summary, sort_keys=True).encode()).hexdigest()


def plan_layers(staging: Path, image_prefix: str) -> LayerPlan:
    """Split the installed prefix in ``staging`` into package layers and a final layer."""
    plan = LayerPlan()
    owned: set[str] = set()
    candidates: list[PackageLayer] = []
    for meta_path in sorted((staging / "conda-meta").glob("*.json")):
        meta = json.loads(meta_path.read_text())
        files, size = _present(str(staging), meta.get("files", []))
        layer = PackageLayer(
            name=meta["name"],
            version=str(meta["version"]),
            build=meta.get("build", ""),
            files=tuple(files),
            size=size,
            cache_key=_package_key(meta, image_prefix, files),
        )
        plan.all_packages.append(layer.label)
        candidates.append(layer)
    chosen = sorted(candidates, key=lambda p: (-p.size, p.name))[:MAX_PACKAGE_LAYERS]
    chosen_names = {p.name for p in chosen}
    for layer in sorted(candidates, key=lambda p: p.name):
        if layer.name in chosen_names and layer.files:
            plan.packages.append(layer)
            owned.update(layer.files)
    plan.rest = _unowned(staging, owned)
    plan.all_packages.sort()
    plan.installed = sorted(candidates, key=lambda p: p.name)
    anyone = {f for p in candidates for f in p.files}
    plan.unowned = [f for f in plan.rest if f not in anyone]
    return plan


def _present(root: str, listed: list[str]) -> tuple[list[str], int]:
    """The listed files still in the prefix (sorted), and their bytes (symlinks count 0):
    one ``lstat`` each, on plain strings, as a large environment has tens of thousands."""
    present, size = [], 0
    for rel in set(listed):
        try:
            st = os.lstat(os.path.join(root, rel))
        except FileNotFoundError:
            continue
        present.append(rel)
        if not stat.S_ISLNK(st.st_mode):
            size += st.st_size
    return sorted(present), size


def _unowned(staging: Path, owned: set[str]) -> list[str]:
    root = str(staging)
    rest = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = dirpath[len(root) + 1 :]  # "" at the top
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for name in filenames + links:
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if rel not in owned:
                rest.append(rel)
        if not filenames and not dirnames and rel_dir:
            rest.append(rel_dir)
    return sorted(rest)


def prefix_entries(
    staging: Path, image_prefix: str, paths: list[str] | tuple[str, ...]
) -> list[Entry]:
    """Layer entries for prefix-relative ``paths``, placed under ``image_prefix``."""
    base = image_prefix.strip("/")
    return [Entry(f"{base}/{p}", source=staging / p) for p in paths]
