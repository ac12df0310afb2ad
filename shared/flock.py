"""``flock`` held from asyncio: the package cache's in-use lock, the registry's staging locks.

The blocking wait runs in a thread so the event loop goes on; a wait cancelled meanwhile still
ends with the lock taken in that thread, so it is given back at once rather than leaked.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import AsyncIterator
from pathlib import Path


def take(path: Path, mode: int) -> int:
    """An open descriptor of ``path`` (created, with its directory) holding ``flock(mode)``;
    closing it releases the lock. ``LOCK_NB`` in ``mode`` raises ``BlockingIOError``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        fcntl.flock(fd, mode)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.asynccontextmanager
async def held(path: Path, mode: int) -> AsyncIterator[None]:
    """Hold ``flock(mode)`` on ``path`` for the block, waiting without blocking the loop."""
    taking = asyncio.ensure_future(asyncio.to_thread(take, path, mode))
    try:
        fd = await asyncio.shield(taking)
    except asyncio.CancelledError:  # the thread still takes the lock: give it back
        with contextlib.suppress(Exception):
            os.close(await taking)
        raise
    try:
        yield
    finally:
        os.close(fd)  # releases the lock
