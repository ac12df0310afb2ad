"""Installing a lockfile's pip pins into a prefix with ``--no-deps`` (the solver pinned them).

The packer installs them into its build prefix and the image builder into its staging
prefix, the same way: the environment's own pip when it has one, uv otherwise.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from pathlib import Path

from shared.aio import communicate_or_kill
from shared.lockfile import PipPin, UserError
from shared.pip_index import PipIndex


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


def pip_command(
    prefix: Path, requirements: Path, index: PipIndex, *, compile_bytecode: bool = True
) -> list[str]:
    """The environment's own pip when it has one; otherwise uv, aimed at the environment's
    python (a spec may ask for pip packages without listing ``pip`` itself). uv never
    compiles; ``compile_bytecode=False`` stops pip too (``.pyc`` files embed source mtimes,
    which reproducible images cannot have)."""
    python = prefix / "bin" / "python"
    common = ["--no-deps", "-r", str(requirements), *index.args()]
    if any((prefix / "lib").glob("python*/site-packages/pip/__init__.py")):
        return [
            str(python), "-m", "pip", "install", "--no-input", "--disable-pip-version-check",
            "--no-warn-script-location", "--no-cache-dir",
            *([] if compile_bytecode else ["--no-compile"]), *common,
        ]  # fmt: skip
    from uv import find_uv_bin

    return [find_uv_bin(), "pip", "install", "--python", str(python), "--no-cache", *common]


def _write_file(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


async def install_pip(
    prefix: Path,
    pins: Sequence[PipPin],
    index: PipIndex,
    workdir: Path,
    *,
    compile_bytecode: bool = True,
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
    if not compile_bytecode:  # nor the .pyc of pip's own modules, as it runs
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    proc = await asyncio.create_subprocess_exec(
        *pip_command(prefix, requirements, index, compile_bytecode=compile_bytecode),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
        cwd=workdir,
    )
    out, _ = await communicate_or_kill(proc)
    lines = out.decode(errors="replace").splitlines()
    if proc.returncode != 0:
        tail = "\n".join(lines[-30:])
        if not (prefix / "bin").is_dir():  # the prefix vanished: not pip's refusal, retry
            raise FileNotFoundError(f"the prefix {prefix} vanished during pip install:\n{tail}")
        raise UserError(f"pip install failed (exit {proc.returncode}):\n{tail}")
    return lines
