"""The packer's side of a build's SBOM: ``Solved``'s packages, completed from the installed
prefix, described by ``shared.sbom`` and uploaded next to the other artifacts.

The solve knows each conda package's license from repodata, but not a pip package's (uv's
lock has none), and a submitted lockfile carries no licenses at all. The installed prefix
has both: ``conda-meta/<name>-<version>-<build>.json`` and each wheel's ``METADATA``. So the
SBOM is made after the install, where every package is known and on disk.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from email.message import Message
from importlib.metadata import PathDistribution, distributions
from pathlib import Path

from shared.artifacts import ArtifactStore
from shared.artifacts.keys import build_prefix
from shared.events import PackageRef
from shared.sbom import MEDIA_TYPE, SBOM_FILE, SbomSubject, build_sbom

_LICENSE_CLASSIFIER = "License :: "
_MAX_LICENSE_FIELD = 120
"""A ``License:`` header longer than this (or on several lines) is a license text, not a name."""


def sbom_key(build_id: int) -> str:
    return build_prefix(build_id) + SBOM_FILE


def _conda_license(prefix: Path, package: PackageRef) -> str | None:
    record = prefix / "conda-meta" / f"{package.name}-{package.version}-{package.build}.json"
    try:
        value = json.loads(record.read_text()).get("license")
    except (OSError, ValueError, AttributeError):
        return None
    return str(value) if value else None


def license_of_metadata(metadata: Message) -> str | None:
    """A wheel's license as core metadata states it: PEP 639's ``License-Expression``, else a
    short ``License:``, else its ``License ::`` classifiers (e.g. ``MIT License``)."""
    expression = (metadata.get("License-Expression") or "").strip()
    if expression:
        return expression
    field = (metadata.get("License") or "").strip()
    if field and "\n" not in field and len(field) <= _MAX_LICENSE_FIELD and field != "UNKNOWN":
        return field
    classifiers = [
        c.rsplit("::", 1)[-1].strip()
        for c in metadata.get_all("Classifier") or []
        if c.startswith(_LICENSE_CLASSIFIER) and c.count("::") >= 2
    ]
    return ", ".join(dict.fromkeys(classifiers)) or None


def _pip_licenses(prefix: Path) -> dict[str, str]:
    """Normalized distribution name → license, for what is installed in ``prefix``."""
    paths = [str(p) for p in prefix.glob("lib/python*/site-packages")]
    found: dict[str, str] = {}
    for dist in distributions(path=paths):
        assert isinstance(dist, PathDistribution)
        license_ = license_of_metadata(dist.metadata)  # type: ignore[arg-type]
        name = dist.metadata["Name"] or ""
        if license_ and name:
            found.setdefault(_normalized(name), license_)
    return found


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def with_licenses(packages: Sequence[PackageRef], prefix: Path) -> list[PackageRef]:
    """``packages`` with the licenses the solve did not know, read from the prefix."""
    pip = _pip_licenses(prefix) if any(p.manager == "pip" for p in packages) else {}
    completed = []
    for package in packages:
        if package.license:
            completed.append(package)
            continue
        found = (
            pip.get(_normalized(package.name))
            if package.manager == "pip"
            else _conda_license(prefix, package)
        )
        completed.append(package.model_copy(update={"license": found}) if found else package)
    return completed


async def upload_sbom(
    artifacts: ArtifactStore,
    subject: SbomSubject,
    packages: Sequence[PackageRef],
    prefix: Path,
) -> tuple[str, int]:
    """Make the build's SBOM from its installed prefix and upload it; (key, size in bytes)."""
    completed = await asyncio.to_thread(with_licenses, packages, prefix)
    document = await asyncio.to_thread(build_sbom, subject, completed)
    key = sbom_key(subject.build_id)
    await artifacts.put_bytes(key, document, MEDIA_TYPE)
    return key, len(document)
