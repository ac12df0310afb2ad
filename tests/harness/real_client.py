"""conda-store's own client (PyPI ``conda-store==2025.2.2``), the one users already have.

It installs a ``conda-store`` script, as this project's ``client/`` does, so it lives in a venv
of its own, kept between runs in ``$CONDA_STORE_TEST_CACHE/clients`` (else
``~/.cache/conda-store-es/clients``) and called by absolute path. A ``complete`` stamp marks a
finished install; a lock serialises sessions that build it at the same time.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from pathlib import Path

VERSION = "2025.2.2"


def cache_dir() -> Path:
    env = os.environ.get("CONDA_STORE_TEST_CACHE")
    base = Path(env) if env else Path.home() / ".cache" / "conda-store-es"
    return base / "clients"


def real_client() -> Path:
    """The path of the upstream ``conda-store`` script, installing it on first use (PyPI)."""
    base = cache_dir()
    base.mkdir(parents=True, exist_ok=True)
    venv = base / f"conda-store-{VERSION}"
    script = venv / "bin" / "conda-store"
    if (venv / "complete").exists():
        return script
    with open(base / f"conda-store-{VERSION}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / "complete").exists():
            return script
        shutil.rmtree(venv, ignore_errors=True)  # a half install (scripts name the venv path)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        done = subprocess.run(
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
            + ["--disable-pip-version-check", f"conda-store=={VERSION}"],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pip install conda-store=={VERSION} failed:\n{done.stderr}")
        (venv / "complete").write_text(VERSION + "\n")
    return script
