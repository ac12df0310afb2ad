"""Install a build's lockfile into a staging directory for a fixed in-image prefix.

rattler's ``alternative_target_prefix`` writes the files into ``staging`` but patches prefix
placeholders (shebangs, ``sysconfigdata``, pkg-config files...) for ``image_prefix``, so every
path is right once the files sit at ``image_prefix`` inside the image. Packages come from the
shared package cache the packer also uses, so an image build after a pack downloads nothing.
The lockfile's pip pins follow, installed by the environment's own pip.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import rattler

from shared.lockfile import PipPin
from shared.logging import get_logger
from shared.package_cache import installing
from shared.pip_install import PipIndex, install_pip

from .retarget import retarget_pip_scripts

log = get_logger(__name__)

IMAGE_PLATFORM = "linux-64"


async def install_for_image(
    records: list,  # type: ignore[type-arg]
    staging: Path,
    image_prefix: str,
    cache_dir: Path,
) -> None:
    """Install ``records`` into ``staging`` with every path patched for ``image_prefix``."""
    async with installing(cache_dir, records):
        await rattler.install(
            records,
            target_prefix=staging,
            cache_dir=cache_dir,
            alternative_target_prefix=image_prefix,
            show_progress=False,
            execute_link_scripts=False,
        )


async def install_pip_for_image(
    staging: Path, pins: list[PipPin], image_prefix: str, pip_index: PipIndex, workdir: Path
) -> None:
    """pip-install the lockfile's pip pins into ``staging`` as the packer does into its
    prefix, without ``.pyc`` files (they embed mtimes), then retarget pip's scripts."""
    await install_pip(staging, pins, pip_index, workdir, compile_bytecode=False)
    scripts = await asyncio.to_thread(retarget_pip_scripts, staging, image_prefix)
    log.info("pip packages installed", count=len(pins), scripts=len(scripts))
