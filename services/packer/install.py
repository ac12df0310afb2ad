"""Installing a build prefix: rattler from one shared package cache, then the pip pins.

Every build links from ``<data_dir>/cache/pkgs``: a package is downloaded and extracted once
for all builds and hard-linked into each prefix. rattler guards each cache entry with its own
file lock (``<entry>.lock``), so concurrent builds in one process or in several packer
processes on the same disk share the cache safely (checked by the six-builds test).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import rattler

from shared.settings import Settings

from .lockfile import PipPin, UserError

MAX_PREFIX_LENGTH = 255
PREFIX_TOO_LONG = "build_path too long: must be <= 255 characters"
"""conda-store's ``status_info`` for this case, word for word."""


def package_cache_dir(settings: Settings) -> Path:
    return Path(settings.data_dir).absolute() / "cache" / "pkgs"


def build_prefix(settings: Settings, build_id: int) -> Path:
    """``<data_dir>/builds/<id>``: short on purpose (packages patch their prefix into files)."""
    return Path(settings.data_dir).absolute() / "builds" / str(build_id)


def check_prefix_length(prefix: Path) -> None:
    if len(str(prefix)) > MAX_PREFIX_LENGTH:
        raise UserError(PREFIX_TOO_LONG)


async def remove_tree(path: Path) -> None:
    """Delete a directory (in a thread: a prefix holds thousands of files)."""
    await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)


async def clean_prefix(prefix: Path) -> None:
    """Start from nothing: a redelivered build may find a half-built prefix of a dead packer."""
    await remove_tree(prefix)
    await asyncio.to_thread(prefix.parent.mkdir, parents=True, exist_ok=True)


def _is_missing_package(text: str) -> bool:
    lowered = text.lower()
    return any(s in lowered for s in ("404", "not found", "no such file", "410 gone"))


async def install_conda(
    records: Sequence[rattler.RepoDataRecord],
    prefix: Path,
    cache_dir: Path,
    reporter: rattler.InstallerReporter | None = None,
) -> None:
    """Link ``records`` into ``prefix``. A package the channel no longer has is a UserError;
    other failures (network, disk) propagate so the consumer retries.

    If the caller is cancelled, the install is allowed to finish first (rattler keeps
    working after its Python future is cancelled), so that the caller can then delete the
    prefix without racing rattler's writers.
    """
    await asyncio.to_thread(cache_dir.mkdir, parents=True, exist_ok=True)
    task = asyncio.ensure_future(
        rattler.install(
            list(records),
            prefix,
            cache_dir=cache_dir,
            show_progress=False,
            reporter=reporter,
            execute_link_scripts=False,
        )
    )
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await task
        raise
    except Exception as exc:
        text = str(exc)
        if type(exc).__name__ == "InstallerError" and _is_missing_package(text):
            raise UserError(f"a package could not be fetched from its channel:\n{text}") from exc
        raise


def _pip_requirement(pin: PipPin, with_hash: bool) -> str:
    req = f"{pin.name} @ {pin.url}" if pin.url else f"{pin.name}=={pin.version}"
    if with_hash and pin.sha256:
        req += f" --hash=sha256:{pin.sha256}"
    return req


def pip_requirements(pins: Sequence[PipPin]) -> str:
    """A requirements file: the locked file URL when known, hashes when every pin has one
    (pip's hash-checking mode is all or nothing)."""
    hashed = all(p.sha256 for p in pins)
    return "".join(_pip_requirement(p, hashed) + "\n" for p in pins)


def _index_args(settings: Settings) -> list[str]:
    args: list[str] = []
    if settings.pip_no_index:
        args.append("--no-index")
    elif settings.pip_index_url:
        args += ["--index-url", settings.pip_index_url]
    if settings.pip_find_links:
        args += ["--find-links", settings.pip_find_links]
    return args


def pip_command(prefix: Path, requirements: Path, settings: Settings) -> list[str]:
    """The environment's own pip when it has one; otherwise uv, aimed at the environment's
    python (a spec may ask for pip packages without listing ``pip`` itself)."""
    python = prefix / "bin" / "python"
    common = ["--no-deps", "-r", str(requirements), *_index_args(settings)]
    if any((prefix / "lib").glob("python*/site-packages/pip/__init__.py")):
        return [
            str(python), "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
            "--no-warn-script-location", "--no-cache-dir", *common,
        ]  # fmt: skip
    from uv import find_uv_bin

    return [find_uv_bin(), "pip", "install", "--python", str(python), "--no-cache", *common]


def _write_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


async def install_pip(
    prefix: Path, pins: Sequence[PipPin], settings: Settings, workdir: Path
) -> list[str]:
    """``pip install --no-deps`` of the locked pins into ``prefix``; returns pip's output lines.

    pip's refusals (a missing wheel, a hash mismatch, a bad index) are UserErrors: the same
    lockfile would fail the same way on a retry. The subprocess is killed if we are cancelled.
    """
    if not pins:
        return []
    requirements = workdir / "pip-requirements.txt"
    await asyncio.to_thread(_write_file, requirements, pip_requirements(pins))
    env = {
        "PATH": f"{prefix / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": os.environ.get("HOME", str(workdir)),
        "PIP_NO_INPUT": "1",
        "PYTHONNOUSERSITE": "1",
        "LANG": "C.UTF-8",
    }
    proc = await asyncio.create_subprocess_exec(
        *pip_command(prefix, requirements, settings),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        cwd=workdir,
    )
    try:
        out, _ = await proc.communicate()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise
    lines = out.decode(errors="replace").splitlines()
    if proc.returncode != 0:
        tail = "\n".join(lines[-30:])
        raise UserError(f"pip install failed (exit {proc.returncode}):\n{tail}")
    return lines
