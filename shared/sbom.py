"""A build's software bill of materials: its packages → CycloneDX 1.5 JSON bytes.

Pure: the caller (the packer) gathers the packages and the build's identity, this module only
describes them. The document is made by ``cyclonedx-python-lib``, which knows the schema, so
the output is valid CycloneDX rather than JSON that looks like it. It is deterministic: the
same build and packages give the same bytes (the serial number is derived from them, the
time is the caller's), so a retried pack uploads the same SBOM and the image that carries its
digest stays reproducible.

Package URLs follow the purl spec: ``pkg:conda/<name>@<version>?build=…&channel=…&subdir=…
&type=conda|tar.bz2`` for conda packages, ``pkg:pypi/<name>@<version>`` for pip ones.
"""

from __future__ import annotations

import hashlib
import uuid
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from cyclonedx.contrib.license.factories import LicenseFactory
from cyclonedx.model import (
    ExternalReference,
    ExternalReferenceType,
    HashAlgorithm,
    HashType,
    Property,
    XsUri,
)
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.output.json import JsonV1Dot5
from packageurl import PackageURL

from shared.events import PackageRef

MEDIA_TYPE = "application/vnd.cyclonedx+json"
"""IANA's media type for CycloneDX JSON; the version is in the document (``specVersion``)."""
SBOM_FILE = "sbom.cdx.json"
PROPERTY_PREFIX = "conda-store"
_SERIAL_NAMESPACE = uuid.UUID("6f1d5a57-3c0e-4f7e-9a55-5c0f6d3b7e21")
_LICENSES = LicenseFactory()


@dataclass(frozen=True, slots=True)
class SbomSubject:
    """What the SBOM describes: one build of one environment, made at ``created``."""

    namespace: str
    environment: str
    build_id: int
    build_key: str
    created: datetime


def package_purl(package: PackageRef) -> PackageURL:
    """The purl of one package (the purl spec's ``conda`` and ``pypi`` types)."""
    if package.manager == "pip":
        return PackageURL(type="pypi", name=_pypi_name(package.name), version=package.version)
    qualifiers = {
        "build": package.build,
        "channel": package.channel,
        "subdir": package.subdir,
        "type": _conda_archive_type(package.url),
    }
    return PackageURL(
        type="conda",
        name=package.name.lower(),
        version=package.version,
        qualifiers={k: v for k, v in qualifiers.items() if v},
    )


def _pypi_name(name: str) -> str:
    """purl's pypi names are lowercase with ``-`` for ``_`` (and PEP 503 folds ``.`` too)."""
    return name.lower().replace("_", "-").replace(".", "-")


def _conda_archive_type(url: str) -> str:
    if url.endswith(".conda"):
        return "conda"
    if url.endswith(".tar.bz2"):
        return "tar.bz2"
    return ""


def _component(package: PackageRef) -> Component:
    purl = package_purl(package)
    hashes = [HashType(alg=HashAlgorithm.SHA_256, content=package.sha256)] if package.sha256 else []
    if package.md5:
        hashes.append(HashType(alg=HashAlgorithm.MD5, content=package.md5))
    properties = [Property(name=f"{PROPERTY_PREFIX}:manager", value=package.manager)]
    for name, value in (
        ("build", package.build),
        ("channel", package.channel),
        ("subdir", package.subdir),
    ):
        if value:
            properties.append(Property(name=f"{PROPERTY_PREFIX}:{name}", value=value))
    references = (
        [ExternalReference(type=ExternalReferenceType.DISTRIBUTION, url=XsUri(package.url))]
        if package.url
        else []
    )
    return Component(
        type=ComponentType.LIBRARY,
        name=package.name,
        version=package.version,
        bom_ref=purl.to_string(),
        purl=purl,
        hashes=hashes,
        licenses=[_LICENSES.make_from_string(package.license)] if package.license else [],
        description=package.summary or None,
        external_references=references,
        properties=properties,
    )


def _unique(packages: Iterable[PackageRef]) -> list[PackageRef]:
    """One entry per purl (bom-refs must be unique), in a stable order."""
    seen: dict[str, PackageRef] = {}
    for package in packages:
        seen.setdefault(package_purl(package).to_string(), package)
    return [seen[k] for k in sorted(seen)]


def serial_number(subject: SbomSubject, packages: Sequence[PackageRef]) -> uuid.UUID:
    """A UUID unique to this build and package set, and the same every time it is made."""
    digest = hashlib.sha256(f"{subject.build_id}\n{subject.build_key}".encode())
    for package in packages:
        digest.update(f"\n{package_purl(package).to_string()}|{package.sha256}".encode())
    return uuid.uuid5(_SERIAL_NAMESPACE, digest.hexdigest())


def build_sbom(subject: SbomSubject, packages: Sequence[PackageRef]) -> bytes:
    """The CycloneDX 1.5 JSON document of a build holding ``packages`` (conda and pip)."""
    unique = _unique(packages)
    root = Component(
        type=ComponentType.APPLICATION,
        name=f"{subject.namespace}/{subject.environment}",
        version=subject.build_key or str(subject.build_id),
        bom_ref=f"conda-store:build:{subject.build_id}",
        properties=[
            Property(name=f"{PROPERTY_PREFIX}:build-id", value=str(subject.build_id)),
            Property(name=f"{PROPERTY_PREFIX}:namespace", value=subject.namespace),
            Property(name=f"{PROPERTY_PREFIX}:environment", value=subject.environment),
        ],
    )
    components = [_component(p) for p in unique]
    bom = Bom(
        components=components,
        serial_number=serial_number(subject, unique),
        metadata=BomMetaData(component=root, timestamp=subject.created),
    )
    bom.register_dependency(root, components)  # the environment holds every package
    with warnings.catch_warnings():  # the library warns about components without depends
        warnings.simplefilter("ignore")
        text = JsonV1Dot5(bom).output_as_string()
    return text.encode()
