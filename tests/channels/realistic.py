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

import shutil
from pathlib import Path

from tests.channels.cache import (
    cached_build,
    downloads_dir,
    materialise,
    recipe_key,
    require_empty,
)
from tests.channels.condapkg import PackageFormat
from tests.channels.wheelchannel import BUILDER_SOURCES, build_wheel_channel
from tests.channels.wheelfetch import pip_download

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

_SOURCES = (*BUILDER_SOURCES, "realistic.py")


def wheels_dir_for(channel: Path) -> Path:
    """The wheel directory that `build_realistic_channel(channel)` fills: `channel/../wheels`."""
    return channel.parent / "wheels"


def _build(entry: Path) -> None:
    """Build channel and wheel directory into `entry` (a fresh directory)."""
    downloads = downloads_dir()
    wheels = pip_download(downloads, BINARY_PINS, "binary")
    wheels += pip_download(downloads, PURE_PINS, "pure")
    formats: dict[str, PackageFormat] = {name: ".tar.bz2" for name in _TAR_BZ2}
    build_wheel_channel(entry / "channel", wheels, formats=formats)
    (entry / "wheels").mkdir()
    for wheel in pip_download(downloads, WHEEL_DIR_PINS, "pure"):
        shutil.copy2(wheel, entry / "wheels" / wheel.name)


def build_realistic_channel(root: Path) -> Path:
    """Make the realistic channel appear at `root` (and its wheels at `root/../wheels`).

    `root` must be missing or empty. The first call on a machine builds into the cache
    (needs PyPI, `patchelf`); later calls link from the cache in milliseconds. Returns `root`.
    """
    require_empty(root)
    pins = (*BINARY_PINS, *PURE_PINS, *WHEEL_DIR_PINS)
    entry = cached_build("realistic", recipe_key(_SOURCES, *pins), _build)
    materialise(entry / "channel", root)
    materialise(entry / "wheels", wheels_dir_for(root))
    return root
