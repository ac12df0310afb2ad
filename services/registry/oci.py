"""OCI image-spec and Docker schema 2 documents: media types, digests and (pure) builders.

Documents are serialized canonically (sorted keys, no spaces) so that the same inputs always
give the same bytes and therefore the same digest: that is what makes images reproducible and
lets the Docker variant of a manifest be derived on demand instead of being stored.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
_TO_DOCKER = {OCI_CONFIG: DOCKER_CONFIG, OCI_LAYER_GZIP: DOCKER_LAYER_GZIP}
_TO_OCI = {v: k for k, v in _TO_DOCKER.items()}


def canonical_json(document: Any) -> bytes:
    """The one byte form every document is stored and hashed in."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_digest(reference: str) -> bool:
    """Whether a manifest reference is a digest (``sha256:<64 hex>``) rather than a tag."""
    algorithm, _, hexpart = reference.partition(":")
    return (
        algorithm == "sha256"
        and len(hexpart) == 64
        and all(c in "0123456789abcdef" for c in hexpart)
    )


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A pointer to a blob: media type, digest and size (OCI image-spec descriptor)."""

    media_type: str
    digest: str
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


def image_manifest(
    config: Descriptor, layers: list[Descriptor], annotations: dict[str, str] | None = None
) -> dict[str, Any]:
    """An OCI image manifest; ``mediaType`` is set as the distribution spec recommends."""
    manifest: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    if annotations:
        manifest["annotations"] = dict(annotations)
    return manifest


def to_docker(manifest: dict[str, Any]) -> dict[str, Any]:
    """The Docker schema 2 twin of an OCI manifest: same blobs, Docker media types.

    Docker schema 2 has no ``annotations``, so they are dropped.
    """

    def convert(descriptor: dict[str, Any]) -> dict[str, Any]:
        media_type = descriptor["mediaType"]
        return {**descriptor, "mediaType": _TO_DOCKER.get(media_type, media_type)}

    return {
        "schemaVersion": 2,
        "mediaType": DOCKER_MANIFEST,
        "config": convert(manifest["config"]),
        "layers": [convert(layer) for layer in manifest["layers"]],
    }


def to_oci(manifest: dict[str, Any]) -> dict[str, Any]:
    """The OCI twin of a Docker schema 2 manifest (used for upstream base images)."""

    def convert(descriptor: dict[str, Any]) -> dict[str, Any]:
        media_type = descriptor["mediaType"]
        return {**descriptor, "mediaType": _TO_OCI.get(media_type, media_type)}

    return {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": convert(manifest["config"]),
        "layers": [convert(layer) for layer in manifest["layers"]],
    }


def blob_digests(manifest: dict[str, Any]) -> list[str]:
    """Every blob a manifest references (config first), for garbage collection."""
    return [manifest["config"]["digest"], *(layer["digest"] for layer in manifest["layers"])]


@dataclass(frozen=True, slots=True)
class ManifestVariant:
    """One serialized form of an image manifest."""

    media_type: str
    body: bytes

    digest: str


@lru_cache(maxsize=1024)
def variants(oci_body: bytes) -> tuple[ManifestVariant, ManifestVariant]:
    """(OCI, Docker) serializations of a stored OCI manifest (pure, so memoized)."""
    docker = canonical_json(to_docker(json.loads(oci_body)))
    return (
        ManifestVariant(OCI_MANIFEST, oci_body, sha256_digest(oci_body)),
        ManifestVariant(DOCKER_MANIFEST, docker, sha256_digest(docker)),
    )


def negotiate(accept: str | None, oci_body: bytes) -> ManifestVariant:
    """Pick the manifest form a client asked for in ``Accept``.

    Real clients list several types; OCI wins when both are acceptable (it is the stored form,
    and carries annotations). A client that lists only Docker schema 2 (older docker) gets that;
    one that sends no Accept (or ``*/*``) gets OCI, as distribution does for OCI images.
    """
    oci, docker = variants(oci_body)
    accepted = _accepted_types(accept)
    if OCI_MANIFEST in accepted or not accepted or "*/*" in accepted:
        return oci
    if DOCKER_MANIFEST in accepted:
        return docker
    return oci


def _accepted_types(accept: str | None) -> set[str]:
    if not accept:
        return set()
    types = set()
    for part in accept.split(","):
        media_type = part.split(";", 1)[0].strip().lower()
        if media_type:
            types.add(media_type)
    return types
