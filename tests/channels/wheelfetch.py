"""Wheels for the running CPython X.Y on manylinux x86_64, from the PyPI the machine reaches.

Channels are built from pins (`name==version`), fetched with `pip download --no-deps` so that
a channel is the same on every machine. `resolve_pins` turns top-level requirements into such
a pin list (pip's own resolver, `--dry-run --report`), for recipes that hold a whole
dependency closure; its result is committed next to the recipe.

Which wheel of a release becomes the package (`WheelKind`):
- `binary`: a cpXY wheel (the package becomes linux-64);
- `pure`: the `py3-none-any` wheel even where binary ones exist (becomes `noarch: python`);
- `best`: what pip would install on the machine: a binary wheel where one fits, else the pure one.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import Version

from tests.channels.pythonpkg import python_xy

WheelKind = Literal["binary", "pure", "best"]

_MANYLINUX = ("--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64")


def _target_args(kind: WheelKind) -> list[str]:
    """pip options that select wheels for CPython X.Y on Linux x86_64 whatever runs pip."""
    args = ["--only-binary=:all:", "--disable-pip-version-check", "--python-version", python_xy()]
    if kind == "pure":
        return [*args, "--implementation", "py", "--abi", "none", "--platform", "any"]
    return [*args, *_MANYLINUX, "--implementation", "cp"]


def _is_pure(wheel_name: str) -> bool:
    return wheel_name.endswith("-none-any.whl")


def select_wheel(files: Iterable[str], pin: str, kind: WheelKind) -> str | None:
    """The file name among `files` that `pip download` fetched for `pin` (None if missing).

    Names and versions compare normalised (`PyYAML-6.0.4` is `pyyaml==6.0.4`); for `best` a
    binary wheel wins over a pure one of the same release, as it does for pip.
    """
    name, _, version = pin.partition("==")
    wanted = (canonicalize_name(name), Version(version))
    matches = []
    for file in files:
        if not file.endswith(".whl"):
            continue
        wheel_name, wheel_version, _, _ = parse_wheel_filename(file)
        if (wheel_name, wheel_version) != wanted:
            continue
        if (kind == "binary" and _is_pure(file)) or (kind == "pure" and not _is_pure(file)):
            continue
        matches.append(file)
    matches.sort(key=lambda f: (_is_pure(f), f))
    return matches[0] if matches else None


def pip_download(dest: Path, pins: Sequence[str], kind: WheelKind) -> list[Path]:
    """Fetch exactly `pins` (no dependency resolution) into `dest`; one wheel per pin, in order.

    Files already in `dest` are not fetched again.
    """
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest)]
    done = subprocess.run([*cmd, *_target_args(kind), *pins], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip download {' '.join(pins)} failed:\n{done.stderr}")
    files = [p.name for p in dest.glob("*.whl")]
    wheels = []
    for pin in pins:
        found = select_wheel(files, pin, kind)
        if found is None:
            raise RuntimeError(f"pip download gave no {kind} wheel for {pin} in {dest}")
        wheels.append(dest / found)
    return wheels


def resolve_pins(requirements: Sequence[str]) -> list[str]:
    """The dependency closure of `requirements` as sorted `name==version` pins (best wheels).

    pip resolves without installing (`--dry-run --report`), reading wheel metadata only.
    """
    cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "-q"]
    cmd += ["--report", "-", *_target_args("best"), *requirements]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip could not resolve {' '.join(requirements)}:\n{done.stderr}")
    report = json.loads(done.stdout)
    found = {
        canonicalize_name(i["metadata"]["name"]): i["metadata"]["version"]
        for i in report["install"]
    }
    return [f"{name}=={version}" for name, version in sorted(found.items())]


def read_pins(path: Path) -> tuple[str, ...]:
    """Pins from a file of `name==version` lines (`#` comments and blank lines ignored)."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return tuple(line for line in lines if line)


def write_pins(path: Path, pins: Sequence[str], header: str) -> None:
    """Write a pins file; `header` (one or more lines) becomes its leading comment."""
    comment = "".join(f"# {line}\n" for line in header.splitlines())
    path.write_text(comment + "".join(f"{pin}\n" for pin in pins))
