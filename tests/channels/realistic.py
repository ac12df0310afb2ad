"""The realistic channel: a real CPython, numpy, requests and friends, repackaged locally.

Built from the running interpreter (`python`, `python_abi`, see `pythonpkg`) and from wheels
fetched with `pip download` from the PyPI the machine can reach (see `wheelrepack`): `numpy`
as linux-64; `requests`, `urllib3`, `idna`, `certifi`, `charset-normalizer`, `six` and `pip`
as `noarch: python`. Versions are pinned below so that tests can rely on them.

Next to the channel sits a flat wheel directory with pure wheels that are *not* in the
channel (`tomli`, `packaging`, and `requests-toolbelt`, which needs `requests` from the conda
side): a local index for pip-section tests.

Building takes seconds to a minute (mostly the download), so the result is cached in
`$CONDA_STORE_TEST_CACHE/channels/realistic-<key>` (else `~/.cache/conda-store-es/channels/`),
keyed by the builder sources, the pins and the interpreter; later calls only link files.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.channels.condapkg import PackageFormat, build_package, index_channel
from tests.channels.pythonpkg import python_abi_meta, python_meta, python_xy, stage_python
from tests.channels.wheelrepack import stage_wheel, wheel_meta

BINARY_PINS = ("numpy==2.4.6",)
"""Repacked as linux-64 packages (cp311 manylinux wheels)."""

PURE_PINS = (
    "requests==2.34.2",
    "urllib3==2.8.0",
    "idna==3.20",
    "certifi==2026.10.19.post1",
    "charset-normalizer==3.5.2",
    "six==1.17.0",
    "pip==26.3",
)
"""Repacked as `noarch: python` packages (pure wheels only, even where binary ones exist)."""

WHEEL_DIR_PINS = ("tomli==2.5.0", "packaging==26.3", "requests-toolbelt==1.0.0")
"""Pure wheels left as wheels, for a local pip index; none of them is in the channel."""

_TAR_BZ2 = {"six"}
"""Packages written as `.tar.bz2` so that both archive formats are exercised."""

_SOURCES = ("condapkg.py", "pythonpkg.py", "wheelrepack.py", "realistic.py")


def cache_base() -> Path:
    """Where built channels and downloaded wheels are kept between test runs."""
    env = os.environ.get("CONDA_STORE_TEST_CACHE")
    if env:
        return Path(env) / "channels"
    return Path.home() / ".cache" / "conda-store-es" / "channels"


def cache_key() -> str:
    """Hash of what determines the channel: builder sources (pins included) and interpreter."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for name in _SOURCES:
        digest.update(name.encode() + b"\0" + (here / name).read_bytes())
    digest.update(f"{sys.version}|{sys.base_prefix}|{platform.machine()}".encode())
    return digest.hexdigest()[:16]


def wheels_dir_for(channel: Path) -> Path:
    """The wheel directory that `build_realistic_channel(channel)` fills: `channel/../wheels`."""
    return channel.parent / "wheels"


def _pip_download(dest: Path, pins: tuple[str, ...], binary: bool) -> list[Path]:
    """Fetch exactly `pins` (no dependency resolution) as wheels for CPython 3.X on Linux."""
    dest.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    cmd += ["--disable-pip-version-check", "-q", "--python-version", python_xy(), "-d", str(dest)]
    if binary:
        cmd += ["--platform", "manylinux2014_x86_64", "--platform", "manylinux_2_28_x86_64"]
    else:
        cmd += ["--implementation", "py", "--abi", "none", "--platform", "any"]
    done = subprocess.run([*cmd, *pins], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip download {' '.join(pins)} failed:\n{done.stderr}")
    wheels = []
    for pin in pins:
        name, _, version = pin.partition("==")
        stem = f"{name.replace('-', '_').lower()}-{version}-"
        matches = [w for w in dest.glob("*.whl") if w.name.lower().startswith(stem)]
        if binary:
            matches = [w for w in matches if "-cp" in w.name]
        else:
            matches = [w for w in matches if w.name.endswith("-none-any.whl")]
        if not matches:
            raise RuntimeError(f"pip download gave no wheel for {pin} in {dest}")
        wheels.append(sorted(matches)[0])
    return wheels


def _build(entry: Path, downloads: Path) -> None:
    """Build channel and wheel directory into `entry` (a fresh directory)."""
    channel = entry / "channel"
    xy = python_xy()
    with tempfile.TemporaryDirectory(prefix="realistic-stage-") as tmp:
        stage = Path(tmp) / "python"
        stage_python(stage)
        build_package(python_meta(), stage, channel)
        build_package(python_abi_meta(), Path(tmp) / "empty", channel)
        wheels = _pip_download(downloads, BINARY_PINS, binary=True)
        wheels += _pip_download(downloads, PURE_PINS, binary=False)
        for wheel in wheels:
            stage = Path(tmp) / wheel.name
            info = stage_wheel(wheel, stage, xy)
            meta = wheel_meta(info, xy)
            fmt: PackageFormat = ".tar.bz2" if meta.name in _TAR_BZ2 else ".conda"
            build_package(meta, stage, channel, fmt)
            shutil.rmtree(stage)
    index_channel(channel)
    (entry / "wheels").mkdir()
    for wheel in _pip_download(downloads, WHEEL_DIR_PINS, binary=False):
        shutil.copy2(wheel, entry / "wheels" / wheel.name)


def _ensure_cached() -> Path:
    """Return the cache entry for `cache_key()`, building it first if needed (under a lock).

    The build happens in a temporary sibling directory renamed into place at the end, so an
    interrupted build never leaves a half channel behind; the lock serialises parallel
    sessions (e.g. pytest-xdist workers) on the same cache.
    """
    base = cache_base()
    base.mkdir(parents=True, exist_ok=True)
    key = cache_key()
    entry = base / f"realistic-{key}"
    if (entry / "complete").exists():
        return entry
    with open(base / f"realistic-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (entry / "complete").exists():
            return entry
        for stale in base.glob(f"realistic-{key}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
        shutil.rmtree(entry, ignore_errors=True)
        tmp = base / f"realistic-{key}.tmp-{os.getpid()}"
        tmp.mkdir()
        started = time.monotonic()
        _build(tmp, base / "wheel-downloads")
        (tmp / "complete").write_text(f"built in {time.monotonic() - started:.1f} s\n")
        tmp.rename(entry)
    return entry


def _materialise(src: Path, dst: Path) -> None:
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


def build_realistic_channel(root: Path) -> Path:
    """Make the realistic channel appear at `root` (and its wheels at `root/../wheels`).

    `root` must be missing or empty. The first call on a machine builds into the cache
    (needs PyPI, `patchelf`); later calls link from the cache in milliseconds. Returns `root`.
    """
    if root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty")
    entry = _ensure_cached()
    _materialise(entry / "channel", root)
    _materialise(entry / "wheels", wheels_dir_for(root))
    return root
