"""``conda-store run``: fetch a build's conda-pack archive once, unpack it, exec inside it.

The cache directory is ``$CONDA_STORE_CACHE_DIR/{build_id}`` or
``{tempfile.gettempdir()}/conda-store/{build_id}`` (upstream's place). A build is immutable, so
an unpacked directory is reused forever; a marker written after ``conda-unpack`` succeeded
(and a lock around the download) keeps interrupted or concurrent runs from using half a tree.
"""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from .api import Api
from .builds import download
from .errors import CondaStoreError
from .progress import bar

READY_MARKER = ".conda-store-ready"
_SHEBANG = re.compile(r"^#!.*conda-store\s*$")
_RUN_LINE = re.compile(r"^#!\s*conda-store\s+run(?:\s+(?P<args>.*))?$")


def cache_root() -> Path:
    configured = os.environ.get("CONDA_STORE_CACHE_DIR")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "conda-store"


def is_ready(directory: Path) -> bool:
    return (directory / READY_MARKER).is_file() and (directory / "bin" / "activate").is_file()


# --- shebang ------------------------------------------------------------------------------


def shebang_args(script: str | os.PathLike[str]) -> list[str] | None:
    """``run`` arguments from a ``#!/usr/bin/env conda-store`` script, else None.

    Lines right after the shebang of the form ``#! conda-store run <args>`` add ``<args>``
    (shell-quoted); the script path comes last, so ``#! conda-store run ns/env -- python``
    runs ``python <script>`` in that environment.
    """
    path = Path(script)
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            lines = handle.read(64 * 1024).splitlines()
    except (OSError, UnicodeError):
        return None
    if not lines or not _SHEBANG.match(lines[0]):
        return None
    args: list[str] = []
    for line in lines[1:]:
        if not line.startswith("#!"):
            break
        match = _RUN_LINE.match(line.strip())
        if match is None:
            raise CondaStoreError(f"{script}: expected '#! conda-store run <args>', got {line!r}")
        args.extend(shlex.split(match["args"] or ""))
    return ["run", *args, str(path)]


def rewrite_argv(argv: Sequence[str]) -> list[str]:
    """``conda-store script.py a b`` (the kernel's shebang call) -> ``run ... script.py a b``."""
    if argv and not argv[0].startswith("-") and os.path.isfile(argv[0]):
        args = shebang_args(argv[0])
        if args is not None:
            return [*args, *argv[1:]]
    return list(argv)


# --- archive -------------------------------------------------------------------------------


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def unpack(archive: Path, directory: Path) -> None:
    """Extract (refusing paths that leave the directory), then relocate with conda-unpack."""
    try:
        with tarfile.open(archive, mode="r:*") as tar:
            members = tar.getmembers()
            with bar("unpacking", len(members)) as progress:
                for member in members:
                    tar.extract(member, directory, filter="tar")
                    progress.advance(1)
    except (tarfile.TarError, OSError) as exc:
        raise CondaStoreError(f"cannot unpack {archive.name}: {exc}") from exc
    if not (directory / "bin" / "activate").is_file():
        raise CondaStoreError("the archive has no bin/activate; is it a conda-pack archive?")
    conda_unpack = directory / "bin" / "conda-unpack"
    if conda_unpack.is_file():
        done = subprocess.run([str(conda_unpack)], cwd=directory, capture_output=True, text=True)
        if done.returncode != 0:
            raise CondaStoreError(f"conda-unpack failed: {done.stderr.strip()[-300:]}")
    (directory / READY_MARKER).write_text(f"{archive.name}\n")


def prepare(api: Api, build_id: int, no_cache: bool = False) -> Path:
    """The directory holding the unpacked build, downloading only when it is not there yet."""
    if no_cache:
        directory = Path(tempfile.mkdtemp(prefix=f"conda-store-{build_id}-"))
        archive = directory.with_name(directory.name + ".tar.gz")
        try:
            download(api, build_id, "archive", str(archive))
            unpack(archive, directory)
        finally:
            archive.unlink(missing_ok=True)
        return directory
    root = cache_root()
    directory = root / str(build_id)
    if is_ready(directory):
        return directory
    with _locked(root / f".{build_id}.lock"):
        if is_ready(directory):  # another run finished it while we waited
            return directory
        if directory.exists():
            shutil.rmtree(directory)  # a previous run was interrupted half way
        archive = root / f".{build_id}.tar.gz"
        try:
            download(api, build_id, "archive", str(archive))
            directory.mkdir(parents=True)
            unpack(archive, directory)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        finally:
            archive.unlink(missing_ok=True)
    return directory


def activation_command(directory: Path, command: Sequence[str]) -> list[str]:
    """bash activates the environment, then replaces itself with the user's command."""
    prefix = shlex.quote(str(directory))
    inner = shlex.join(command)
    return ["bash", "-c", f". {prefix}/bin/activate {prefix} && exec {inner}"]


def exec_in(directory: Path, command: Sequence[str], remove_after: bool = False) -> NoReturn:
    """Become the command (a cached build); or, for a throwaway unpack (``remove_after``), run
    it as a child, delete the directory, and exit with the child's status."""
    argv = activation_command(directory, command or ["python"])
    bash = shutil.which("bash")
    if bash is None:
        raise CondaStoreError("bash is needed to activate the environment and was not found")
    if not remove_after:
        os.execv(bash, argv)
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the child's to handle
    try:
        code = subprocess.call(argv, executable=bash)
    finally:
        signal.signal(signal.SIGINT, previous)
        shutil.rmtree(directory, ignore_errors=True)
    sys.exit(128 - code if code < 0 else code)
