"""Channels whose recipe is a pinned dependency closure of a few top-level requirements.

A recipe names its top-level requirements; `lock` resolves their closure for CPython X.Y on
manylinux x86_64 (pip's resolver, best wheel per release) into `pins/<name>.txt`, which is
committed, so the channel is the same on every machine and its cache key is the pin list. A
build downloads exactly those wheels, repacks each one (binary wheels as linux-64, pure ones as
`noarch: python`) next to the running CPython as `python`, and caches the result like the
realistic channel (`tests.channels.cache`).

Each recipe module is also a command: `python -m tests.channels.<name> build|lock`.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.channels.cache import (
    HERE,
    cached_build,
    downloads_dir,
    materialise,
    recipe_key,
    require_empty,
)
from tests.channels.pythonpkg import python_xy
from tests.channels.wheelchannel import BUILDER_SOURCES, build_wheel_channel
from tests.channels.wheelfetch import pip_download, read_pins, resolve_pins, write_pins

_SOURCES = (*BUILDER_SOURCES, "pinned.py")


@dataclass(frozen=True)
class PinnedChannel:
    """A recipe: `requirements` and the committed pins of their closure (`pins/<name>.txt`)."""

    name: str
    requirements: tuple[str, ...]

    @property
    def pins_file(self) -> Path:
        return HERE / "pins" / f"{self.name}.txt"

    def pins(self) -> tuple[str, ...]:
        return read_pins(self.pins_file)

    def lock(self) -> list[str]:
        """Resolve the requirements again and rewrite the pins file (needs PyPI)."""
        pins = resolve_pins(self.requirements)
        header = (
            f"The {self.name} test channel: closure of {' '.join(self.requirements)}\n"
            f"for CPython {python_xy()} on manylinux x86_64 (binary wheels where they exist).\n"
            f"Regenerate with: python -m tests.channels.{self.name} lock"
        )
        write_pins(self.pins_file, pins, header)
        return pins

    def cache_entry(self) -> Path:
        """The cached build (built first if this machine has none for these pins)."""
        return cached_build(self.name, recipe_key(_SOURCES, *self.pins()), self._build)

    def _build(self, entry: Path) -> None:
        wheels = pip_download(downloads_dir(), self.pins(), "best")
        build_wheel_channel(entry / "channel", wheels)

    def build(self, root: Path) -> Path:
        """Make the channel appear at `root` (missing or empty): hard links into the cache."""
        require_empty(root)
        materialise(self.cache_entry() / "channel", root)
        return root


@dataclass(frozen=True)
class ChannelFigures:
    """Size of a channel: what the benchmarks report next to their timings."""

    packages: int
    archive_bytes: int
    payload_bytes: int
    """Sum of the packages' file sizes as listed in `paths.json` (installed size, roughly)."""


def channel_figures(channel: Path) -> ChannelFigures:
    """Count and measure the packages listed in `channel`'s `repodata.json` files."""
    packages = archive = payload = 0
    for repodata_file in sorted(channel.glob("*/repodata.json")):
        repodata = json.loads(repodata_file.read_text())
        for group in ("packages", "packages.conda"):
            for filename in repodata.get(group, {}):
                path = repodata_file.parent / filename
                packages += 1
                archive += path.stat().st_size
                payload += _payload_bytes(path)
    return ChannelFigures(packages, archive, payload)


def _payload_bytes(archive: Path) -> int:
    from rattler.package import PathsJson

    paths = PathsJson.from_package_archive(archive)
    return sum(entry.size_in_bytes or 0 for entry in paths.paths)


def cli(channel: PinnedChannel, argv: Sequence[str] | None = None) -> int:
    """`build [--to DIR]`: build or reuse the cached channel and print its figures;
    `lock`: resolve the requirements again and rewrite the pins file."""
    parser = argparse.ArgumentParser(prog=f"python -m tests.channels.{channel.name}")
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build (or reuse) the cached channel")
    build.add_argument("--to", type=Path, help="also make a copy of the channel at this path")
    sub.add_parser("lock", help=f"re-resolve the pins into {channel.pins_file.name}")
    args = parser.parse_args(argv)
    if args.command == "lock":
        pins = channel.lock()
        print(f"{len(pins)} pins written to {channel.pins_file}")
        return 0
    entry = channel.cache_entry()
    figures = channel_figures(entry / "channel")
    print(f"channel: {entry / 'channel'} ({(entry / 'complete').read_text().strip()})")
    print(
        f"{figures.packages} packages, {figures.archive_bytes / 1e6:.0f} MB of archives, "
        f"{figures.payload_bytes / 1e6:.0f} MB of files"
    )
    if args.to is not None:
        channel.build(args.to)
        print(f"copied to {args.to}")
    return 0
