"""Pruning rattler's package cache: least recently used first, never while an install links."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shared.package_cache import entry_name, installing, mark_used, prune


@dataclass
class Name:
    normalized: str


@dataclass
class Record:
    name: Name
    version: str
    build: str


def fill(cache: Path, name: str, size: int, age_s: float) -> Path:
    entry = cache / name
    (entry / "info").mkdir(parents=True)
    (entry / "info" / "data").write_bytes(b"x" * size)
    (cache / f"{name}.lock").write_text("rev")
    stamp = entry.stat().st_mtime - age_s
    os.utime(entry, (stamp, stamp))
    return entry


def test_least_recently_used_entries_go_first_until_under_ninety_percent(tmp_path: Path) -> None:
    cache = tmp_path / "pkgs"
    old = fill(cache, "old-1-0", 400, age_s=300)
    mid = fill(cache, "mid-1-0", 400, age_s=200)
    new = fill(cache, "new-1-0", 400, age_s=100)
    assert prune(cache, 10_000) == 0  # under the cap: nothing happens
    assert prune(cache, 600) == 800  # 1200 > 600: down to <= 540 takes the two oldest
    assert not old.exists() and not (cache / "old-1-0.lock").exists()
    assert not mid.exists() and new.exists() and (cache / "new-1-0.lock").exists()


def test_mark_used_moves_an_entry_to_the_back(tmp_path: Path) -> None:
    cache = tmp_path / "pkgs"
    old = fill(cache, "numpy-2.0-py_0", 400, age_s=300)
    new = fill(cache, "six-1.0-py_0", 400, age_s=100)
    record = Record(Name("numpy"), "2.0", "py_0")
    assert entry_name(record) == "numpy-2.0-py_0"
    mark_used(cache, [record])
    assert prune(cache, 700) == 400
    assert old.exists() and not new.exists()


async def test_nothing_is_pruned_while_an_install_links(tmp_path: Path) -> None:
    cache = tmp_path / "pkgs"
    entry = fill(cache, "bar-1-0", 400, age_s=100)
    async with installing(cache):
        assert prune(cache, 1) == 0
        assert entry.exists()
    assert prune(cache, 1) == 400
    assert not entry.exists()
