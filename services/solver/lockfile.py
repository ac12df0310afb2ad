"""conda-lock v1 lockfiles, written and read with conda-lock's own models.

Writing through ``conda_lock.lockfile.write_conda_lock_file`` (rather than dumping a dict of
our own) guarantees that ``conda-lock`` and rattler, which both read that format, accept what
we store. The stored text is that document as JSON (``json.dumps(indent=4)``), as conda-store
stores its LOCKFILE artifact: scripts written against conda-store read it with
``json.loads``, and JSON is YAML, so conda-lock and rattler read it all the same.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from conda_lock.lockfile import lockfile_v1_to_v2, write_conda_lock_file
from conda_lock.lockfile.v1.models import HashModel, LockMeta
from conda_lock.lockfile.v1.models import Lockfile as LockfileV1
from conda_lock.lockfile.v2prelim.models import LockedDependency, Lockfile
from conda_lock.models.channel import Channel

from shared.memo import BoundedMemo

from .types import LockedPackage, SolveResult


def _dependencies(package: LockedPackage) -> dict[str, str]:
    deps: dict[str, str] = {}
    for dep in package.depends:
        name, _, constraint = dep.strip().partition(" ")
        deps[name] = constraint.strip() or "*"
    return deps


def _locked(package: LockedPackage) -> LockedDependency:
    return LockedDependency(
        name=package.name,
        version=package.version,
        manager=package.manager,
        platform=package.platform,
        dependencies=_dependencies(package),
        url=package.url,
        hash=HashModel(md5=package.md5, sha256=package.sha256),
        build=package.build or None,
        categories={"main"},
    )


VIRTUAL_PACKAGES_KEY = "virtual_packages"
"""``metadata.custom_metadata`` key recording a build's virtual packages (conda-lock keeps
custom metadata as strings): ``"__cuda=12.4 __glibc=2.35"``, ``name=`` for one removed."""


def virtual_packages_metadata(virtual: dict[str, str]) -> dict[str, str] | None:
    if not virtual:
        return None
    return {VIRTUAL_PACKAGES_KEY: " ".join(f"{k}={v}" for k, v in sorted(virtual.items()))}


def as_json(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=4) + "\n"


SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's loader where PyYAML has it: ten times the pure-Python one on a lockfile."""

_rendered: BoundedMemo[str, str] = BoundedMemo(64)
"""Lockfile texts by the digest of their solve result: a solve-cache hit (a rebuild) would
otherwise spend ~0.3 s of a 150-package environment writing the same document again."""


def render_lockfile(result: SolveResult) -> str:
    """The conda-lock v1 document for a solve result (every platform, conda and pip)."""
    key = hashlib.sha256(result.model_dump_json().encode()).hexdigest()
    known = _rendered.get(key)
    if known is not None:
        return known
    lockfile = Lockfile(
        package=[_locked(p) for p in result.packages],
        metadata=LockMeta(
            content_hash={p: result.content_hash for p in result.platforms},
            channels=[Channel.from_string(c) for c in result.channels],
            platforms=list(result.platforms),
            sources=["environment.yaml"],
            custom_metadata=virtual_packages_metadata(result.virtual_packages),
        ),
    )
    with tempfile.TemporaryDirectory(prefix="cs-lock-") as tmp:
        path = Path(tmp) / "conda-lock.yml"
        write_conda_lock_file(lockfile, path, metadata_choices=None)
        text = as_json(yaml.load(path.read_text(), Loader=SAFE_LOADER))
    _rendered.put(key, text)
    return text


def submitted_lockfile_text(lockfile: dict[str, Any]) -> str:
    """A submitted lockfile recorded before its text was kept (or lacking ``version: 1``):
    the document as JSON, with the version."""
    return as_json({"version": 1, **lockfile})


def lockfile_media_type(text: str) -> str:
    """JSON (what the solver writes, and what most clients submit), else YAML."""
    return "application/json" if text.lstrip().startswith("{") else "application/yaml"


def _split_url(url: str) -> tuple[str, str]:
    """``.../channel/linux-64/pkg.conda`` -> (``.../channel``, ``linux-64``)."""
    parts = url.rsplit("/", 2)
    if len(parts) == 3:
        return parts[0], parts[1]
    return "", ""


def result_from_lockfile(lockfile: dict[str, Any]) -> SolveResult:
    """What a solve would have produced, read from a submitted conda-lock v1 lockfile."""
    content = {k: v for k, v in lockfile.items() if k != "version"}
    parsed = lockfile_v1_to_v2(LockfileV1.model_validate(content))
    packages = []
    for dep in parsed.package:
        channel, subdir = _split_url(dep.url) if dep.manager == "conda" else ("", "")
        packages.append(
            LockedPackage(
                manager=dep.manager,
                name=dep.name,
                version=dep.version,
                build=dep.build or "",
                channel=channel,
                subdir=subdir,
                url=dep.url,
                md5=dep.hash.md5,
                sha256=dep.hash.sha256,
                platform=dep.platform,
                depends=[f"{n} {c}" if c != "*" else n for n, c in dep.dependencies.items()],
            )
        )
    platforms = list(parsed.metadata.platforms) or sorted({p.platform for p in packages})
    return SolveResult(
        channels=[c.url for c in parsed.metadata.channels],
        platforms=platforms,
        packages=packages,
        content_hash=next(iter(parsed.metadata.content_hash.values()), ""),
    )
