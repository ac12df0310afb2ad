"""A child process never outlives the task waiting for it: cancelling the wait (a canceled
build) or its timeout kills the child and reaps it before the exception goes on."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest

from shared.aio import communicate_or_kill


async def _sleeper() -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        "sleep", "30", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_cancelling_the_wait_kills_the_child() -> None:
    proc = await _sleeper()
    task = asyncio.create_task(communicate_or_kill(proc))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert proc.returncode == -signal.SIGKILL
    assert _gone(proc.pid)


async def test_a_timeout_kills_the_child_and_raises_timeout_error() -> None:
    proc = await _sleeper()
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(communicate_or_kill(proc, 0.1), 5)
    assert proc.returncode == -signal.SIGKILL
    assert _gone(proc.pid)


async def test_a_child_that_finishes_gives_its_output() -> None:
    proc = await asyncio.create_subprocess_exec(
        "sh",
        "-c",
        "echo out; echo err >&2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert await communicate_or_kill(proc, 5) == (b"out\n", b"err\n")
    assert proc.returncode == 0
