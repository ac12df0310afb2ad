"""One staging prefix per environment, kept from one of its images to the next.

An environment's next build usually changes a package or two. rattler's install into the
prefix the last image was made from is then a transaction: it unlinks what left and links what
came, instead of linking every package again (0.5-0.9 s for a 160-package environment). The
layers of unchanged packages are already known (``LayerCache``), so the image costs little
more than hashing the new layers.

A staging is held under an exclusive ``flock`` for the whole image build (install, then
layers), so two builds of one environment take turns. A marker written before and removed after
a successful build tells a staging that a crash or error may have left half-changed: it is
deleted and made afresh. Environments with pip packages get a fresh prefix every time (pip's
files are not in ``conda-meta``, so a transaction could not remove them).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from shared import flock


def _name(text: str) -> str:
    """A directory name for any namespace or environment name."""
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class Stagings:
    def __init__(self, root: Path) -> None:
        self.root = root

    @contextlib.asynccontextmanager
    async def hold(self, namespace: str, environment: str) -> AsyncIterator[Path]:
        """The environment's staging prefix, for this build alone until the block ends."""
        home = self.root / _name(namespace)
        prefix = home / _name(environment)
        unfinished = prefix.with_name(prefix.name + ".unfinished")
        async with flock.held(prefix.with_name(prefix.name + ".lock"), fcntl.LOCK_EX):
            if unfinished.exists():
                await asyncio.to_thread(shutil.rmtree, prefix, True)
            unfinished.touch()
            yield prefix
            unfinished.unlink()

    async def drop(self, namespace: str, environment: str | None = None) -> None:
        """Forget the stagings of a deleted environment, or of every environment of a deleted
        namespace (an image building meanwhile makes its staging again)."""
        home = self.root / _name(namespace)
        target = home if environment is None else home / _name(environment)
        await asyncio.to_thread(shutil.rmtree, target, True)
