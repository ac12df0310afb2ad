"""Segmented conda-pack archives: the same entries as ``conda_pack.pack``, packages compressed once.

Real packages from the tiny channel, installed by rattler into prefixes that share one package
cache, packed by the packer's child process exactly as a build runs it.
"""

from __future__ import annotations

import ast
import asyncio
import datetime
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import conda_pack
import pytest
import rattler

from services.packer.pack import pack_prefix
from services.packer.segments import PackStats, SegmentCache
from tests.channels.server import ServedChannel


async def install(channel: ServedChannel, specs: list[str], prefix: Path, root: Path) -> None:
    records = await rattler.solve(
        sources=[rattler.Channel(channel.url)],
        specs=[rattler.MatchSpec(s) for s in specs],
        gateway=rattler.Gateway(cache_dir=root / "repodata"),
        platforms=["linux-64", "noarch"],
        timeout=datetime.timedelta(seconds=60),
    )
    await rattler.install(records, prefix, cache_dir=root / "pkgs", show_progress=False)


def entries(archive: Path) -> dict[str, tuple[int, int, bytes | str]]:
    """name → (type, mode, content or link target) for every member."""
    out: dict[str, tuple[int, int, bytes | str]] = {}
    with tarfile.open(archive) as tar:
        for m in tar:
            f = tar.extractfile(m) if m.isfile() else None
            content: bytes | str = f.read() if f is not None else m.linkname
            out[m.name] = (int.from_bytes(m.type, "big"), m.mode, content)
    return out


def unpack_records(script: bytes) -> set[tuple[str, str, str]]:
    """conda-unpack's ``_prefix_records``: which files it rewrites, from which placeholder."""
    text = script.decode()
    start = text.index("_prefix_records = [")
    end = text.index("]\n", start)
    return {tuple(r) for r in ast.literal_eval(text[start + len("_prefix_records = ") : end + 1])}


@pytest.fixture
async def prefixes(tiny_channel: ServedChannel, tmp_path: Path) -> dict[str, Path]:
    envs = {
        "a": ["bar", "withprefix", "hello-cli"],
        "b": ["baz", "withprefix", "hello-cli"],
    }
    out = {}
    for name, specs in envs.items():
        out[name] = tmp_path / "builds" / name
        await install(tiny_channel, specs, out[name], tmp_path)
    return out


async def test_archive_has_conda_packs_entries_and_reuses_packages(
    prefixes: dict[str, Path], tmp_path: Path
) -> None:
    segments = tmp_path / "segments"
    first = await pack_prefix(prefixes["a"], tmp_path / "a.tar.gz", segments, 2)
    assert first.reused == []
    assert set(first.compressed) == {"bar", "libfoo", "withprefix", "hello-cli", "python"}

    reference = tmp_path / "reference.tar.gz"
    await asyncio.to_thread(
        conda_pack.pack, prefix=str(prefixes["a"]), output=str(reference), force=True
    )
    ours, theirs = entries(tmp_path / "a.tar.gz"), entries(reference)
    assert set(ours) == set(theirs)
    script = "bin/conda-unpack"
    records = unpack_records(ours[script][2])  # type: ignore[arg-type]
    assert records == unpack_records(theirs[script][2])  # type: ignore[arg-type]
    assert "etc/withprefix/prefix.txt" in {path for path, _, _ in records}
    differing = [n for n in ours if n != script and ours[n] != theirs[n]]
    assert differing == []

    second = await pack_prefix(prefixes["b"], tmp_path / "b.tar.gz", segments, 2)
    assert set(second.reused) == {"libfoo", "withprefix", "hello-cli", "python"}
    assert second.compressed == ["baz"]
    assert "4 package segments reused" in second.summary()

    # Unpacked elsewhere, conda-unpack writes the new prefix where the placeholder was.
    target = tmp_path / "elsewhere" / "a-longer-directory-than-before" / "env"
    target.mkdir(parents=True)
    with tarfile.open(tmp_path / "b.tar.gz") as tar:
        tar.extractall(target, filter="tar")
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, str(target / "bin" / "conda-unpack")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert str(target) in (target / "etc" / "withprefix" / "prefix.txt").read_text()
    assert str(prefixes["b"]) not in (target / "etc" / "withprefix" / "prefix.txt").read_text()
    assert (target / "lib" / "libfoo-version.txt").is_file()


async def test_concurrent_packs_compress_each_package_once(
    prefixes: dict[str, Path], tmp_path: Path
) -> None:
    await asyncio.to_thread(six_packs_at_once, prefixes, tmp_path)


def six_packs_at_once(prefixes: dict[str, Path], tmp_path: Path) -> None:
    """Six pack processes, three per environment, started together with an empty cache."""
    segments = tmp_path / "segments"
    packs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.packer.pack",
                str(prefixes[name]),
                str(tmp_path / f"{name}{i}.tar.gz"),
                str(segments),
                "1",
            ],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        for i in range(3)
        for name in ("a", "b")
    ]
    stats = []
    for proc in packs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        stats.append(PackStats(**json.loads(out.decode().splitlines()[-1])))
    compressed = [name for s in stats for name in s.compressed]
    assert sorted(compressed) == sorted(set(compressed))  # nobody compressed a package twice
    assert set(compressed) == {"bar", "baz", "libfoo", "withprefix", "hello-cli", "python"}
    names = {n for n in entries(tmp_path / "a0.tar.gz")}
    for i in range(3):
        assert set(entries(tmp_path / f"a{i}.tar.gz")) == names


async def test_prune_keeps_the_cap_lru_first_and_never_breaks_a_pack(
    prefixes: dict[str, Path], tmp_path: Path
) -> None:
    root = tmp_path / "segments"
    await pack_prefix(prefixes["a"], tmp_path / "a.tar.gz", root, 2)
    await pack_prefix(prefixes["b"], tmp_path / "b.tar.gz", root, 2)
    cache = SegmentCache(root)
    members = sorted(root.glob("*.gz"))
    assert len(members) == 6  # bar, baz, libfoo, withprefix, hello-cli, python
    sizes = {m.name[:-3]: m.stat().st_size for m in members}
    total = sum(sizes.values())

    assert cache.prune(total) == 0  # under the cap: nothing goes
    # Least recently used first: make the order explicit, then ask for a little room.
    order = sorted(sizes, key=lambda k: sizes[k], reverse=True)  # biggest is oldest
    for age, key in enumerate(order):
        os.utime(cache.member(key), (1_000_000 + age, 1_000_000 + age))
    freed = cache.prune(total - 1)
    assert freed == sizes[order[0]]  # the oldest alone frees more than 10%
    assert not cache.member(order[0]).exists() and cache.member(order[1]).exists()

    # An entry someone holds open stays readable; one whose lock is held is not deleted.
    reader = cache.open_entry(order[1])
    assert reader is not None
    with cache.lock(order[2], wait=True):
        cache.prune(1)
        assert cache.member(order[2]).exists()
    assert not cache.member(order[1]).exists()
    assert len(reader[0].read()) == sizes[order[1]]
    reader[0].close()

    # Packing after a prune compresses what is gone and gives the same archive entries.
    again = await pack_prefix(prefixes["b"], tmp_path / "b2.tar.gz", root, 2)
    assert again.compressed and set(entries(tmp_path / "b2.tar.gz")) == set(
        entries(tmp_path / "b.tar.gz")
    )
