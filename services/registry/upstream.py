"""Pulling a configured upstream base image (``CONDA_STORE_REGISTRY_BASE_IMAGE``) over the OCI
distribution API, so environments can sit on e.g. ``debian:bookworm-slim`` in production.

Only what an image build needs: resolve the reference to one linux/amd64 manifest (through an
index or a Docker manifest list), read its config, and stream each layer blob to disk with its
digest checked. Docker Hub style token auth (``WWW-Authenticate: Bearer realm=…``) is followed,
anonymously or with the configured credentials. The last good resolution is kept on disk, so an
upstream outage does not stop builds whose base layers are already stored.

Not the ``oras`` package (0.2.43 installs here): it is synchronous (requests), picks no
platform from an index or manifest list, checks no digest (it returns the manifest parsed, so
a pinned ``@sha256:`` cannot be verified, and streams blobs unchecked), and would bring requests
and jsonschema; only the ~40 lines of token auth below would go.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from shared.fileops import write_text_atomic
from shared.logging import get_logger

from .oci import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    Descriptor,
    sha256_digest,
    to_oci,
)

log = get_logger(__name__)

DOCKER_HUB = "registry-1.docker.io"
PLATFORM = {"os": "linux", "architecture": "amd64"}
ACCEPT = ", ".join((OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST))
_CHALLENGE_PARAM = re.compile(r'(\w+)="([^"]*)"')
_CHUNK = 1 << 20


class UpstreamError(RuntimeError):
    """The base image could not be resolved or fetched (named in the message)."""


@dataclass(frozen=True, slots=True)
class ImageReference:
    registry: str
    repository: str
    reference: str  # a tag or a digest

    def __str__(self) -> str:
        sep = "@" if self.reference.startswith("sha256:") else ":"
        return f"{self.registry}/{self.repository}{sep}{self.reference}"


def parse_reference(text: str) -> ImageReference:
    """Docker's reference rules: the first part is a registry when it has a ``.`` or ``:`` or
    is ``localhost``; otherwise Docker Hub (``library/`` for one-part names); tag ``latest``."""
    name, _, digest = text.strip().partition("@")
    first, _, rest = name.partition("/")
    if rest and ("." in first or ":" in first or first == "localhost"):
        registry, path = first, rest
    else:
        registry, path = DOCKER_HUB, name
    if registry in ("docker.io", "index.docker.io"):
        registry = DOCKER_HUB
    repository, tag = path, "latest"
    last = path.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _, tag = path.rpartition(":")
    if registry == DOCKER_HUB and "/" not in repository:
        repository = f"library/{repository}"
    if not repository or not re.fullmatch(r"[a-z0-9]+(?:[._/-][a-z0-9]+)*", repository):
        raise UpstreamError(f"invalid base image reference {text!r}")
    if digest and not re.fullmatch(r"sha256:[0-9a-f]{64}", digest):
        raise UpstreamError(f"invalid digest in base image reference {text!r}")
    return ImageReference(registry, repository, digest or tag)


@dataclass(frozen=True, slots=True)
class BaseImage:
    """A resolved base: its manifest digest, config (parsed) and layers (OCI media types)."""

    reference: str
    digest: str
    config: dict[str, Any]
    layers: tuple[Descriptor, ...]

    @property
    def diff_ids(self) -> list[str]:
        return list(self.config.get("rootfs", {}).get("diff_ids", []))


def pick_platform(index: dict[str, Any]) -> str:
    """The linux/amd64 manifest digest of an OCI index or Docker manifest list."""
    for entry in index.get("manifests", []):
        platform = entry.get("platform", {})
        if all(platform.get(k) == v for k, v in PLATFORM.items()):
            return str(entry["digest"])
    raise UpstreamError("the base image has no linux/amd64 manifest")


def base_from_documents(reference: str, manifest_body: bytes, config_body: bytes) -> BaseImage:
    """Check and convert an image manifest and its config into a :class:`BaseImage`."""
    manifest = json.loads(manifest_body)
    if manifest.get("mediaType", OCI_MANIFEST) == DOCKER_MANIFEST:
        manifest = to_oci(manifest)
    if sha256_digest(config_body) != manifest["config"]["digest"]:
        raise UpstreamError("the base image config does not match its digest")
    config = json.loads(config_body)
    layers = tuple(
        Descriptor(layer["mediaType"], layer["digest"], int(layer["size"]))
        for layer in manifest["layers"]
    )
    if len(config.get("rootfs", {}).get("diff_ids", [])) != len(layers):
        raise UpstreamError("the base image config and manifest disagree on its layers")
    if (config.get("os"), config.get("architecture")) != ("linux", "amd64"):
        raise UpstreamError("the base image is not linux/amd64")
    return BaseImage(reference, sha256_digest(manifest_body), config, layers)


class UpstreamRegistry:
    """A small pull-only client of one upstream registry."""

    def __init__(
        self,
        ref: ImageReference,
        *,
        insecure: bool = False,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.ref = ref
        scheme = "http" if insecure else "https"
        self.base_url = f"{scheme}://{ref.registry}/v2/{ref.repository}"
        self.basic = (username, password) if username and password else None
        self.timeout = timeout
        self._token: str | None = None

    def _headers(self, accept: str | None = None) -> dict[str, str]:
        headers = {"Accept": accept} if accept else {}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        return headers

    async def _authorize(self, client: httpx.AsyncClient, challenge: str) -> None:
        scheme, _, params = challenge.partition(" ")
        if scheme.lower() == "basic":
            if self.basic is None:
                raise UpstreamError(f"{self.ref.registry} wants credentials for the base image")
            client.auth = httpx.BasicAuth(*self.basic)
            return
        fields = dict(_CHALLENGE_PARAM.findall(params))
        if scheme.lower() != "bearer" or "realm" not in fields:
            raise UpstreamError(f"unsupported auth challenge from {self.ref.registry}")
        query = {k: v for k, v in fields.items() if k in ("service", "scope")}
        query.setdefault("scope", f"repository:{self.ref.repository}:pull")
        auth = httpx.BasicAuth(*self.basic) if self.basic else None
        r = await client.get(fields["realm"], params=query, auth=auth)
        if r.status_code != 200:
            raise UpstreamError(f"token request to {fields['realm']} answered {r.status_code}")
        body = r.json()
        self._token = body.get("token") or body.get("access_token")
        if not self._token:
            raise UpstreamError(f"no token from {fields['realm']}")

    async def _send(
        self, client: httpx.AsyncClient, path: str, accept: str | None = None
    ) -> httpx.Response:
        """GET ``path`` as a stream, answering one auth challenge; the caller closes it."""
        for _ in range(2):
            request = client.build_request(
                "GET", f"{self.base_url}{path}", headers=self._headers(accept)
            )
            r = await client.send(request, stream=True)
            if r.status_code != 401:
                break
            await r.aclose()
            await self._authorize(client, r.headers.get("www-authenticate", ""))
        if r.status_code != 200:
            await r.aclose()
            raise UpstreamError(f"GET {self.ref}{path} answered {r.status_code}")
        return r

    async def _get(
        self, client: httpx.AsyncClient, path: str, accept: str | None = None
    ) -> httpx.Response:
        r = await self._send(client, path, accept)
        await r.aread()
        await r.aclose()
        return r

    async def resolve(self) -> BaseImage:
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=True) as client:
            reference = self.ref.reference
            for _ in range(2):
                r = await self._get(client, f"/manifests/{reference}", ACCEPT)
                body = r.content
                if reference.startswith("sha256:") and sha256_digest(body) != reference:
                    raise UpstreamError(f"manifest of {self.ref} does not match its digest")
                document = json.loads(body)
                media_type = document.get("mediaType") or r.headers.get("content-type")
                if media_type in (OCI_INDEX, DOCKER_MANIFEST_LIST):
                    reference = pick_platform(document)
                    continue
                config_digest = document["config"]["digest"]
                config = (await self._get(client, f"/blobs/{config_digest}")).content
                return base_from_documents(str(self.ref), body, config)
        raise UpstreamError(f"{self.ref} is an index of indexes")

    async def download(self, digest: str, dest: Path) -> int:
        """Stream a blob to ``dest``, checking its digest; returns its size."""
        async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=True) as client:
            r = await self._send(client, f"/blobs/{digest}")
            try:
                return await _save(r, digest, dest)
            finally:
                await r.aclose()


async def _save(response: httpx.Response, digest: str, dest: Path) -> int:
    hasher, size = hashlib.sha256(), 0
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    with tmp.open("wb") as out:
        async for chunk in response.aiter_bytes(_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
            out.write(chunk)
    if f"sha256:{hasher.hexdigest()}" != digest:
        tmp.unlink(missing_ok=True)
        raise UpstreamError(f"blob {digest} arrived with another digest")
    os.replace(tmp, dest)
    return size


class ResolvedBaseCache:
    """The last good resolution of each base reference, for when the upstream is away."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, reference: str) -> Path:
        return self.root / f"{hashlib.sha256(reference.encode()).hexdigest()}.json"

    def get(self, reference: str) -> BaseImage | None:
        try:
            data = json.loads(self._path(reference).read_text())
        except (FileNotFoundError, ValueError):
            return None
        layers = tuple(Descriptor(d["mediaType"], d["digest"], d["size"]) for d in data["layers"])
        return BaseImage(data["reference"], data["digest"], data["config"], layers)

    def put(self, base: BaseImage) -> None:
        doc = {
            "reference": base.reference,
            "digest": base.digest,
            "config": base.config,
            "layers": [d.to_json() for d in base.layers],
        }
        write_text_atomic(self._path(base.reference), json.dumps(doc))
