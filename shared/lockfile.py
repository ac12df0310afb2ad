"""Reading the solver's conda-lock v1 lockfile into what the installers need.

rattler reads conda-lock v1 directly and hands back ``RepoDataRecord``s (url, hashes, paths
metadata) that ``rattler.install`` takes as they are, so nothing is re-solved here: the build
installs exactly what the lockfile pins. ``manager: pip`` entries come back as PyPI packages.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import rattler
import yaml


class UserError(Exception):
    """A build failure that retrying cannot fix (bad lockfile, missing package, pip refusal).

    The worker turns it into ``BuildFailed`` at once instead of letting the consumer retry.
    """


@dataclass(frozen=True)
class PipPin:
    name: str
    version: str
    url: str | None = None
    sha256: str | None = None


@dataclass
class LockContents:
    platform: str
    conda: list[rattler.RepoDataRecord]
    pip: list[PipPin] = field(default_factory=list)


def content_key(contents: LockContents, *salt: str) -> str:
    """Identity of an environment: what would be installed, byte for byte (conda URLs and
    hashes, pip URLs and hashes); ``salt`` adds what else the caller's product depends on
    (its format version, an image prefix...)."""
    conda = sorted(f"{r.url}#{r.md5.hex() if r.md5 else ''}" for r in contents.conda)
    pip = sorted(f"{p.name}=={p.version}@{p.url}#{p.sha256 or ''}" for p in contents.pip)
    doc = {"salt": list(salt), "platform": contents.platform, "conda": conda, "pip": pip}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def _pip_pin(package: rattler.PypiLockedPackage) -> PipPin:
    location = str(package.location or "") or None
    sha256 = None
    hashes = package.hashes
    if hashes is not None and getattr(hashes, "sha256", None):
        sha256 = bytes(hashes.sha256).hex()
    return PipPin(name=package.name, version=str(package.version), url=location, sha256=sha256)


def _declared_platforms(path: Path) -> list[str]:
    """``metadata.platforms`` of a conda-lock v1 file: rattler only lists platforms that have
    packages, so an empty environment's platform is known from here alone."""
    try:
        document = yaml.safe_load(path.read_text())
        platforms = document["metadata"]["platforms"]
    except (yaml.YAMLError, OSError, KeyError, TypeError):
        return []
    return [str(p) for p in platforms] if isinstance(platforms, list) else []


def read_lockfile(path: Path, platform: str | None = None) -> LockContents:
    """Records and pip pins of ``platform`` (default: this machine's) from a lockfile.

    Raises ``UserError`` when the file is not a lockfile rattler understands or does not cover
    the platform: resubmitting the same lockfile would fail the same way. A platform the
    lockfile declares but has no packages for is an empty environment (``dependencies: []``).
    """
    target = platform or str(rattler.Subdir.current())
    try:
        lock = rattler.LockFile.from_path(path)
    except Exception as exc:
        if not path.is_file():  # deleted under us: the machine's problem, not the lockfile's
            raise FileNotFoundError(f"the lockfile {path} vanished before it was read") from exc
        raise UserError(f"invalid lockfile: {exc}") from exc
    env = lock.default_environment()
    if env is None:
        raise UserError("the lockfile has no default environment")
    match = [p for p in env.platforms() if p.name == target]
    if not match and target in _declared_platforms(path):
        return LockContents(platform=target, conda=[])  # an empty environment
    if not match:
        names = ", ".join(p.name for p in env.platforms()) or "none"
        raise UserError(f"the lockfile has no packages for {target} (it has: {names})")
    conda = list(env.conda_repodata_records_for_platform(match[0]) or [])
    pip = [_pip_pin(p) for p in env.pypi_packages_for_platform(match[0]) or []]
    return LockContents(platform=target, conda=conda, pip=pip)
