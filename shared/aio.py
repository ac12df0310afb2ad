"""Guards for long-running asyncio loops."""

from __future__ import annotations

import asyncio


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
