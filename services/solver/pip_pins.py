"""Pin a spec's ``pip:`` section with ``uv pip compile`` (exact versions and sha256 hashes).

Packages the conda solve already provides must not be installed again by pip, yet pip
requirements may depend on them (``requests-toolbelt`` needs ``requests``). So each of them
is offered to uv as a metadata-only stub wheel pinned by a constraint, and left out of the
output: uv checks version compatibility against the conda version without pip touching it.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import tomllib
import zipfile
from collections.abc import Sequence
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from shared.aio import communicate_or_kill
from shared.pip_index import PipIndex

from .types import LockedPackage, SolveFailed

PYTHON_PLATFORMS = {
    "linux-64": "x86_64-unknown-linux-gnu",
    "linux-aarch64": "aarch64-unknown-linux-gnu",
    "linux-ppc64le": "powerpc64le-unknown-linux-gnu",
    "osx-64": "x86_64-apple-darwin",
    "osx-arm64": "aarch64-apple-darwin",
    "win-64": "x86_64-pc-windows-msvc",
}
WHEEL_PLATFORM_HINTS = {
    "linux-64": ("linux", "x86_64"),
    "linux-aarch64": ("linux", "aarch64"),
    "osx-64": ("macosx", "x86_64"),
    "osx-arm64": ("macosx", "arm64"),
    "win-64": ("win", "amd64"),
}
_OPTION = re.compile(r"(--[a-z-]+)[ =](.*)")


def split_pip_entries(entries: Sequence[str], base: PipIndex) -> tuple[list[str], PipIndex]:
    """Separate requirements from ``--index-url``-style options; options override settings."""
    requirements: list[str] = []
    index_url, no_index = base.index_url, base.no_index
    extra, trusted = list(base.extra_index_urls), list(base.trusted_hosts)
    for entry in entries:
        match = _OPTION.fullmatch(entry.strip())
        if not entry.startswith("--") or match is None:
            requirements.append(entry)
            continue
        option, value = match.group(1), match.group(2).strip()
        if option == "--index-url":
            index_url, no_index = value, False
        elif option == "--extra-index-url":
            extra.append(value)
        elif option == "--trusted-host":
            trusted.append(value)
    config = PipIndex(index_url, tuple(extra), base.find_links, no_index, tuple(trusted))
    return requirements, config


def is_python_package(record: LockedPackage) -> bool:
    """A conda package that pip would see as installed (it depends on python)."""
    if record.name in ("python", "python_abi"):
        return False
    return any(dep == "python" or dep.startswith("python ") for dep in record.depends)


def _write_stub_wheel(directory: Path, name: str, version: str) -> None:
    dist = f"{canonicalize_name(name).replace('-', '_')}-{version}"
    path = directory / f"{dist}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as whl:
        whl.writestr(
            f"{dist}.dist-info/METADATA",
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        )
        whl.writestr(
            f"{dist}.dist-info/WHEEL",
            "Wheel-Version: 1.0\nGenerator: conda-store-es\nRoot-Is-Purelib: true\n"
            "Tag: py3-none-any\n",
        )
        whl.writestr(f"{dist}.dist-info/RECORD", "")


def _pick_wheel(entry: dict, platform: str, python: str) -> tuple[str, str | None]:
    """The URL and sha256 of the file pip would install on ``platform``."""
    wheels = entry.get("wheels") or []
    os_hint, arch_hint = WHEEL_PLATFORM_HINTS.get(platform, ("", ""))
    cp = "cp" + python.replace(".", "")

    def score(wheel: dict) -> int:
        name = wheel.get("url", wheel.get("path", "")).rsplit("/", 1)[-1]
        if name.endswith("-none-any.whl"):
            return 1
        if os_hint in name and arch_hint in name and (cp in name or "abi3" in name):
            return 2
        return 0

    best = max(wheels, key=score, default=None)
    if best is not None and score(best) > 0:
        return best.get("url", best.get("path", "")), best.get("hashes", {}).get("sha256")
    sdist = entry.get("sdist")
    if sdist:
        return sdist.get("url", sdist.get("path", "")), sdist.get("hashes", {}).get("sha256")
    if best is not None:
        return best.get("url", ""), best.get("hashes", {}).get("sha256")
    return "", None


async def pin_pip(
    requirements: Sequence[str],
    config: PipIndex,
    platform: str,
    conda_records: Sequence[LockedPackage],
    cache_dir: Path,
    timeout_s: float,
) -> list[LockedPackage]:
    """Resolve ``requirements`` for ``platform`` next to ``conda_records``; SolveFailed on
    an unsatisfiable or unknown requirement, with uv's explanation."""
    if not requirements:
        return []
    from uv import find_uv_bin

    python = next((r.version for r in conda_records if r.name == "python"), "3.11")
    python = ".".join(python.split(".")[:2])
    provided: dict[str, str] = {}
    for record in conda_records:
        try:
            Version(record.version)
        except InvalidVersion:
            continue
        if is_python_package(record):
            provided[canonicalize_name(record.name)] = record.version
    with tempfile.TemporaryDirectory(prefix="cs-pip-") as tmp:
        work = Path(tmp)
        (work / "requirements.in").write_text("\n".join(requirements) + "\n")
        (work / "constraints.txt").write_text(
            "".join(f"{n}=={v}\n" for n, v in sorted(provided.items()))
        )
        stubs = work / "stubs"
        stubs.mkdir()
        for name, version in provided.items():
            _write_stub_wheel(stubs, name, version)
        args = [
            find_uv_bin(), "pip", "compile", "--quiet", "--no-header", "--generate-hashes",
            "--format", "pylock.toml", "--python-version", python,
            "--constraint", str(work / "constraints.txt"),
            "--find-links", str(stubs),
            "--cache-dir", str(cache_dir),
            "--output-file", str(work / "pylock.toml"),
            *config.args(),
        ]  # fmt: skip
        if platform in PYTHON_PLATFORMS:
            args += ["--python-platform", PYTHON_PLATFORMS[platform]]
        for name in provided:
            args += ["--no-emit-package", name]
        args.append(str(work / "requirements.in"))
        proc = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=work
        )
        try:
            _, err = await communicate_or_kill(proc, timeout_s)
        except TimeoutError as exc:
            raise SolveFailed(f"pip resolution did not finish within {timeout_s:g} s") from exc
        if proc.returncode != 0:
            raise SolveFailed("pip dependencies could not be resolved:\n" + err.decode().strip())
        lock = tomllib.loads((work / "pylock.toml").read_text())
    pins = []
    for entry in lock.get("packages", []):
        url, sha256 = _pick_wheel(entry, platform, python)
        pins.append(
            LockedPackage(
                manager="pip",
                name=entry["name"],
                version=str(entry["version"]),
                url=url,
                sha256=sha256,
                platform=platform,
                depends=[d["name"] for d in entry.get("dependencies", []) if "name" in d],
            )
        )
    return pins
