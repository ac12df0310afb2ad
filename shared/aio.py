"""Cancellation guards: long-running loops that stop, child processes that do not outlive us."""

from __future__ import annotations

import asyncio
import contextlib


def raise_if_cancelled() -> None:
    """Stop a loop whose task was cancelled even if an await swallowed the cancellation.

    On Python 3.11 ``asyncio.wait_for`` returns the inner result when a cancel races with
    its completion (fixed in 3.12), and nats-py's ``fetch`` is built on it: a consumer
    cancelled just as a pull request expired would loop forever. The task still counts the
    request (``cancelling()``), so loops check it once per turn.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def communicate_or_kill(
    proc: asyncio.subprocess.Process, timeout: float | None = None
) -> tuple[bytes, bytes]:
    """``proc.communicate()``, except that the child never outlives the wait.

    A cancelled build (or a ``timeout``, raised as TimeoutError) kills the child and reaps it
    before the exception goes on, so the caller may delete the directory the child was writing
    right after, and no orphan keeps a CPU busy for a result nobody reads.
    """
    try:
        if timeout is None:
            return await proc.communicate()
        return await asyncio.wait_for(proc.communicate(), timeout)
    except (asyncio.CancelledError, TimeoutError):
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
