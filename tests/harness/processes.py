"""Subprocesses in tests: clients run from async tests without blocking the event loop (servers
under test may live on that same loop), services (``python -m services.cli <name>``) that
tests kill, pause or restart, and the signals tests send to real servers."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from shared.embedded.ports import free_port
from shared.embedded.postgres import PostgresCluster
from shared.settings import Settings
from tests.harness.embedded_stack import PORT_FIELDS


@dataclass
class Result:
    code: int
    out: str
    err: str


async def run_process(
    argv: Sequence[str],
    env: dict[str, str],
    timeout: float,
    stdin: bytes | None = None,
    cwd: Path | None = None,
) -> Result:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=env,
        cwd=cwd,
        stdin=asyncio.subprocess.DEVNULL if stdin is None else asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise
    return Result(proc.returncode or 0, out.decode(), err.decode())


REPO_ROOT = Path(__file__).resolve().parents[2]


def service_env(settings: Settings, **extra: object) -> dict[str, str]:
    """The environment of a service subprocess that talks to the test's servers.

    ``extra`` are settings by field name (``packer_test_delay_s=30``); every port is a free
    one so that several services can run side by side (``env["CONDA_STORE_API_PORT"]``...).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONDA_STORE_")}
    env.update(
        CONDA_STORE_DATABASE_URL=str(settings.database_url),
        CONDA_STORE_NATS_URL=settings.nats_url,
        CONDA_STORE_DATA_DIR=str(settings.data_dir),
        CONDA_STORE_ARTIFACT_DIR=str(settings.artifact_root),
        CONDA_STORE_CONSUMER_ACK_WAIT_S=str(settings.consumer_ack_wait_s),
        CONDA_STORE_CONSUMER_MAX_DELIVER=str(settings.consumer_max_deliver),
        CONDA_STORE_CONSUMER_LEASE_S=str(settings.lease_term_s),
        CONDA_STORE_LOG_FORMAT="json",
        **{f"CONDA_STORE_{name}": str(free_port()) for name in PORT_FIELDS},
    )
    env.update({f"CONDA_STORE_{k.upper()}": str(v) for k, v in extra.items()})
    return env


def start_service(name: str, settings: Settings, log: Path, **extra: object) -> subprocess.Popen:
    """Start one service; its JSON log lines are appended to ``log``. ``proc.env`` is the
    environment it got, for tests that need its ports."""
    env = service_env(settings, **extra)
    proc = subprocess.Popen(
        [sys.executable, "-m", "services.cli", name],
        env=env,
        cwd=REPO_ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    proc.env = env  # type: ignore[attr-defined]
    return proc


@contextmanager
def paused(pid: int) -> Iterator[None]:
    """SIGSTOP a process for the duration of the block (SIGCONT on the way out, always)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def kill_postgres(cluster: PostgresCluster, timeout: float = 20) -> None:
    """SIGKILL the postmaster, as a crash would, and wait until it is gone."""
    pid = cluster.postmaster_pid()
    assert pid is not None, "postgres is not running"
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while cluster.postmaster_pid() is not None:
        assert time.monotonic() < deadline, "postgres survived SIGKILL"
        time.sleep(0.05)


def restart_postgres(cluster: PostgresCluster, timeout: float = 30) -> None:
    """Start a killed cluster again on its port and data (its backends may take a moment to
    notice the postmaster died and let go of shared memory, so starting is retried)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            cluster.start()
            return
        except (subprocess.CalledProcessError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
