"""Artifact storage (DESIGN §5): build outputs and OCI blobs behind one async interface.

``artifact_store_from_settings`` picks the backend: a local directory for the embedded
single-machine default, or an S3 bucket (MinIO/SeaweedFS/AWS) for deployments.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from shared.settings import Settings

from .base import (
    ArtifactInfo,
    ArtifactNotFound,
    ArtifactStore,
    RangeNotSatisfiable,
)
from .keys import guess_content_type, validate_key, validate_prefix
from .local import LocalArtifactStore
from .s3 import S3ArtifactStore
from .signing import verify_signature

__all__ = [
    "ArtifactInfo",
    "ArtifactNotFound",
    "ArtifactStore",
    "LocalArtifactStore",
    "RangeNotSatisfiable",
    "S3ArtifactStore",
    "artifact_store_from_settings",
    "open_artifact_store",
    "guess_content_type",
    "local_signing_key",
    "validate_key",
    "validate_prefix",
    "verify_signature",
]

_KEY_FILE = "artifact-signing.key"


def local_signing_key(secret: str, data_dir: Path) -> bytes:
    """The HMAC key for local ``/storage`` links, identical in every process of one install.

    Derived from ``secret`` (domain-separated, so a leaked link key is not the JWT
    key); without a configured secret, a random key is kept in ``data_dir`` so links survive
    restarts.
    """
    if secret:
        return hmac.new(secret.encode(), b"artifact-links", hashlib.sha256).digest()
    path = Path(data_dir) / _KEY_FILE
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; use its key
        return path.read_bytes()
    with os.fdopen(fd, "wb") as out:
        out.write(os.urandom(32))
    return path.read_bytes()


def artifact_store_from_settings(
    settings: Settings, *, secret: bytes | None = None
) -> ArtifactStore:
    """Build the configured backend. S3 stores still need ``await store.ensure_bucket()``."""
    if settings.artifact_backend == "s3":
        return S3ArtifactStore(
            settings.s3_endpoint,
            settings.s3_access_key,
            settings.s3_secret_key,
            settings.s3_bucket,
            region=settings.s3_region,
            secure=settings.s3_secure,
            external_endpoint=settings.s3_external_endpoint,
        )
    # links are paths: the API puts them on the visitor's own base URL
    return LocalArtifactStore(
        settings.artifact_root,
        "/storage",
        secret=secret or local_signing_key(settings.secret, settings.data_dir),
    )


async def open_artifact_store(settings: Settings, *, secret: bytes | None = None) -> ArtifactStore:
    """The configured backend, ready to use (an S3 bucket is created if it is missing)."""
    store = artifact_store_from_settings(settings, secret=secret)
    if isinstance(store, S3ArtifactStore):
        await store.ensure_bucket()
    return store
