"""Assemble a conda channel from wheels: the running CPython plus one repacked package a wheel.

The repacks run in a process pool (one worker a core by default; spawned, not forked, because
the caller may be a pytest session with rattler's threads running), largest input first so the
pool ends together. Before indexing, the channel's dependency closure is checked: every
dependency a package names must be in the channel at a version that satisfies it, else the
channel would fail later, at some test's solve, with a less direct message.
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import parse_wheel_filename
from packaging.version import InvalidVersion, Version

from tests.channels.condapkg import PackageFormat, PackageMeta, index_channel
from tests.channels.pythonpkg import build_python_packages, python_xy
from tests.channels.wheelrepack import repack_wheel

BUILDER_SOURCES = (
    "cache.py",
    "condapkg.py",
    "pythonpkg.py",
    "wheelrepack.py",
    "wheelfetch.py",
    "wheelchannel.py",
)
"""The modules that decide what a wheel-built channel holds: part of every recipe's cache key."""


def _satisfies(version: str, spec: str) -> bool:
    """Whether `version` meets the version part of a conda spec made from PEP 440 specifiers
    (`>=1.0,<2`; a bare `3.11.*` means `==3.11.*`); a build string after it is ignored."""
    constraint = spec.split()[0]
    if constraint[0].isdigit():
        constraint = f"=={constraint}"
    try:
        return SpecifierSet(constraint).contains(Version(version), prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return False


def missing_dependencies(metas: Iterable[PackageMeta]) -> dict[str, list[str]]:
    """Per package file stem, the dependencies the channel made of `metas` cannot meet."""
    versions: dict[str, list[str]] = {}
    packages = list(metas)
    for meta in packages:
        versions.setdefault(meta.name, []).append(meta.version)
    problems: dict[str, list[str]] = {}
    for meta in packages:
        for dep in meta.depends:
            name, _, spec = dep.partition(" ")
            have = versions.get(name)
            if have is None:
                problems.setdefault(meta.filename_stem, []).append(f"{dep} (not in the channel)")
            elif spec and not any(_satisfies(v, spec) for v in have):
                found = ", ".join(have)
                problems.setdefault(meta.filename_stem, []).append(f"{dep} (have {found})")
    return problems


def build_wheel_channel(
    channel: Path,
    wheels: Sequence[Path],
    *,
    formats: Mapping[str, PackageFormat] | None = None,
    workers: int | None = None,
) -> list[PackageMeta]:
    """Write `python`, `python_abi` and one package per wheel into `channel`, check the
    closure, index it; return every package's metadata.

    `formats` picks the archive format by conda package name (default `.conda`).
    """
    formats = formats or {}
    xy = python_xy()
    by_size = sorted(wheels, key=lambda w: w.stat().st_size, reverse=True)
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers or os.cpu_count(), mp_context=ctx) as pool:
        python = pool.submit(build_python_packages, channel)
        repacks = [
            pool.submit(
                repack_wheel, w, channel, xy, formats.get(parse_wheel_filename(w.name)[0], ".conda")
            )
            for w in by_size
        ]
        metas = python.result() + [job.result() for job in repacks]
    problems = missing_dependencies(metas)
    if problems:
        lines = [f"{stem}: {'; '.join(deps)}" for stem, deps in sorted(problems.items())]
        raise RuntimeError("channel is not closed under its dependencies:\n" + "\n".join(lines))
    index_channel(channel)
    return metas
