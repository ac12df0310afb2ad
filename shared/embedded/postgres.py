"""A private Postgres cluster in a directory, for the embedded stack and the test harness.

initdb refuses to run as root, so when we are root the cluster is owned by the ``postgres``
system user (Debian's packages create it) and every command runs through ``runuser``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import time
from pathlib import Path

import asyncpg

from .ports import free_port, wait_for_port


def postgres_bindir() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if not candidates:
        raise FileNotFoundError(
            "no Postgres server binaries found (install Debian's 'postgresql' package "
            "or set CONDA_STORE_DATABASE_URL)"
        )
    return Path(candidates[-1]).parent


STARTUP_GRACE_S = 5.0
"""How long a server started without waiting counts as alive before its pid file shows it."""


class PostgresCluster:
    """initdb/start/stop of one cluster; ``dsn(db)`` gives a URL for a database in it.

    It can be supervised (``shared.embedded.supervisor``): ``alive``, ``start(wait=False)``.
    """

    name = "postgres"

    def __init__(self, datadir: Path, port: int | None = None, fast: bool = False) -> None:
        self.datadir = Path(datadir).absolute()
        self.port = port or free_port()
        self.fast = fast
        self.bindir = postgres_bindir()
        self.as_root = os.geteuid() == 0
        self.user = "postgres" if self.as_root else pwd.getpwuid(os.geteuid()).pw_name
        self._launched_at = 0.0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self.as_root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(cmd, check=check, capture_output=True, text=True)

    def _chown(self, path: Path) -> None:
        if self.as_root:
            pw = pwd.getpwnam("postgres")
            os.chown(path, pw.pw_uid, pw.pw_gid)

    @property
    def initialized(self) -> bool:
        return (self.datadir / "PG_VERSION").exists()

    def init(self) -> None:
        self.datadir.parent.mkdir(parents=True, exist_ok=True)
        self.datadir.mkdir(mode=0o700, exist_ok=True)
        self._chown(self.datadir)
        if self.as_root:
            # postgres must be able to traverse to its data directory.
            for parent in self.datadir.parents:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    os.chmod(parent, mode | 0o001)
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "--auth=trust",
            "--no-sync",
            "-U",
            "postgres",
            "-E",
            "UTF8",
            "--locale=C",
        )

    def start(self, wait: bool = True) -> None:
        """Start the server; with ``wait=False`` return at once (the port opens when ready)."""
        if not self.initialized:
            self.init()
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.datadir}"
        if self.fast:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        opts += " -c max_connections=200"
        self._launched_at = time.monotonic()
        self._run(
            "pg_ctl",
            "-D",
            str(self.datadir),
            "-o",
            opts,
            "-l",
            str(self.datadir / "server.log"),
            "-w" if wait else "-W",
            "start",
        )
        if wait:
            wait_for_port("127.0.0.1", self.port)

    def postmaster_pid(self) -> int | None:
        """The running postmaster's pid, from its lock file; None if there is none."""
        try:
            first = (self.datadir / "postmaster.pid").read_text().split("\n", 1)[0]
            pid = int(first)
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) else None

    def alive(self) -> bool:
        if self.postmaster_pid() is not None:
            return True
        return time.monotonic() - self._launched_at < STARTUP_GRACE_S  # still starting

    def describe_exit(self) -> str:
        return "is not running (no live postmaster)"

    def stop(self) -> None:
        if (self.datadir / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop", check=False)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    async def create_database(self, name: str) -> str:
        """Create (if missing) a database and return its URL."""
        conn = await asyncpg.connect(self.dsn())
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        return self.dsn(name)


def _alive(pid: int, command: str = "postgres") -> bool:
    """``pid`` runs ``command`` and is not a zombie (a killed postmaster lingers as one until
    reaped, and a dead one's pid may be reused by anything)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    name = stat[stat.find("(") + 1 : stat.rfind(")")]
    state = stat[stat.rfind(")") + 2 :].split(" ", 1)[0]
    return name == command and state not in ("Z", "X")
