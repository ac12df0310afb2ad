"""Install a build's lockfile into a staging directory for a fixed in-image prefix.

rattler's ``alternative_target_prefix`` writes the files into ``staging`` but patches prefix
placeholders (shebangs, ``sysconfigdata``, pkg-config files...) for ``image_prefix``, so every
path is right once the files sit at ``image_prefix`` inside the image. Packages come from the
shared package cache the packer also uses, so an image build after a pack downloads nothing.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import rattler
from rattler import LockFile

from shared.logging import get_logger

log = get_logger(__name__)

IMAGE_PLATFORM = "linux-64"


class LockfileError(ValueError):
    """The lockfile has nothing installable for the image platform."""


def lockfile_records(lockfile_path: Path, platform: str = IMAGE_PLATFORM) -> list:  # type: ignore[type-arg]
    """The conda records of a conda-lock v1 (or pixi) lockfile for ``platform``."""
    lock = LockFile.from_path(lockfile_path)
    env = lock.default_environment()
    if env is None:
        raise LockfileError("the lockfile has no default environment")
    lock_platform = next((p for p in env.platforms() if p.name == platform), None)
    records = env.conda_repodata_records_for_platform(lock_platform) if lock_platform else None
    if not records:
        raise LockfileError(f"the lockfile has no conda packages for {platform}")
    pypi = env.pypi_packages_for_platform(lock_platform) or []
    if pypi:
        # pip packages are installed by the packer into the archive; the image carries the
        # conda part only (see the issue notes).
        log.warning("pip packages are not in the image", count=len(pypi))
    return list(records)


async def install_for_image(
    records: list,  # type: ignore[type-arg]
    staging: Path,
    image_prefix: str,
    cache_dir: Path,
) -> None:
    """Install ``records`` into ``staging`` with every path patched for ``image_prefix``."""
    await asyncio.to_thread(cache_dir.mkdir, parents=True, exist_ok=True)
    await rattler.install(
        records,
        target_prefix=staging,
        cache_dir=cache_dir,
        alternative_target_prefix=image_prefix,
        show_progress=False,
        execute_link_scripts=False,
    )
