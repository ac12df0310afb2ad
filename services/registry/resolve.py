"""Turn ``<name>`` + ``<reference>`` into the stored OCI manifest, waiting if it is building.

Names are ``<namespace>/<environment>``, or ``conda-store-dynamic/<seg>/<seg>/...`` for
on-demand images. References are ``latest`` (the environment's current build), a build key
(one build) or a digest (either form of one of the repository's manifests).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from shared.eventstore import EventStore
from shared.memo import BoundedMemo
from shared.settings import Settings
from shared.spec import DYNAMIC_NAMESPACE, SpecificationError, dynamic_image_spec

from . import repository
from .access import Caller
from .blobs import Blobs, digest_of_key
from .dynamic import DynamicImages
from .errors import RegistryError
from .oci import is_digest, sha256_digest, variants
from .waiter import BuildWaiter

MANIFEST_CACHE = 1024


@dataclass(frozen=True, slots=True)
class RepoName:
    namespace: str
    environment: str
    dependencies: tuple[str, ...] = ()

    @property
    def dynamic(self) -> bool:
        return bool(self.dependencies)

    @property
    def path(self) -> str:
        return f"{self.namespace}/{self.environment}"


def parse_name(name: str) -> RepoName:
    """Split a repository name; raises NAME_UNKNOWN for shapes no image can have."""
    segments = name.split("/")
    if any(not s for s in segments) or len(segments) < 2:
        raise RegistryError("NAME_UNKNOWN", {"name": name})
    if segments[0] == DYNAMIC_NAMESPACE:
        environment, dependencies = dynamic_image_spec(segments[1:])
        return RepoName(DYNAMIC_NAMESPACE, environment, tuple(dependencies))
    if len(segments) != 2:
        raise RegistryError(
            "NAME_UNKNOWN", {"name": name, "reason": "names are <namespace>/<environment>"}
        )
    return RepoName(segments[0], segments[1])


@dataclass(frozen=True, slots=True)
class ResolvedManifest:
    oci_body: bytes
    pinned_digest: str | None = None
    """Set when the client asked by digest: the form with that digest must be served."""


class Resolver:
    def __init__(
        self,
        store: EventStore,
        blobs: Blobs,
        waiter: BuildWaiter,
        dynamic: DynamicImages,
        settings: Settings,
    ) -> None:
        self.store = store
        self.pool = store.pool
        self.blobs = blobs
        self.waiter = waiter
        self.dynamic = dynamic
        self.timeout = settings.registry_wait_timeout_s
        self._manifests: BoundedMemo[str, bytes] = BoundedMemo(MANIFEST_CACHE)
        self._latest: dict[str, tuple[str, float]] = {}
        self.tag_cache_s = settings.registry_tag_cache_s
        waiter.on_event = self.forget_tags

    async def manifest(self, name: str, reference: str, caller: Caller) -> ResolvedManifest:
        repo = parse_name(name)
        caller.require_read(repo.namespace, repo.environment)
        if is_digest(reference):
            return await self._by_digest(repo, reference)
        if reference == "latest" and not repo.dynamic:
            digest = await self._current_digest(repo)
            if digest is not None:
                return ResolvedManifest(await self._body(digest))
        build_id = await self._build_for_tag(repo, reference)
        digest = await self.wait_for_image(repo, build_id)
        return ResolvedManifest(await self._body(digest))

    async def _current_digest(self, repo: RepoName) -> str | None:
        """The hot path (``latest`` of a built environment): one query, then a short cache.

        Entries live ``tag_cache_s`` and are dropped at once when an event that can move a
        tag is seen on NATS; credentials are still checked on every request.
        """
        loop = asyncio.get_running_loop()
        cached = self._latest.get(repo.path)
        if cached is not None and cached[1] > loop.time():
            return cached[0]
        exists, image = await repository.current_image(self.store, repo.namespace, repo.environment)
        if not exists:
            raise RegistryError("NAME_UNKNOWN", {"name": repo.path})
        if image is None or image.status != "pushed":
            return None
        if len(self._latest) >= MANIFEST_CACHE:
            self._latest.clear()
        self._latest[repo.path] = (image.digest, loop.time() + self.tag_cache_s)
        return image.digest

    def forget_tags(self) -> None:
        """Called by the waiter for every event that may move a tag."""
        self._latest.clear()

    async def _build_for_tag(self, repo: RepoName, tag: str) -> int:
        if repo.dynamic and tag == "latest":
            try:
                return await self.dynamic.ensure_build(repo.environment, list(repo.dependencies))
            except SpecificationError as exc:
                raise RegistryError(
                    "NAME_INVALID", {"name": repo.path, "reason": str(exc)}
                ) from exc
        env = await repository.environment(self.pool, repo.namespace, repo.environment)
        if env is None:
            raise RegistryError("NAME_UNKNOWN", {"name": repo.path})
        if tag == "latest":
            if env["current_build_id"] is None:
                raise RegistryError("MANIFEST_UNKNOWN", {"tag": tag, "reason": "no current build"})
            return int(env["current_build_id"])
        build_id = await repository.build_id_for_key(
            self.pool, repo.namespace, repo.environment, tag
        )
        if build_id is None:
            raise RegistryError("MANIFEST_UNKNOWN", {"tag": tag})
        return build_id

    async def wait_for_image(self, repo: RepoName, build_id: int) -> str:
        """The build's manifest digest, waiting for ``ImagePushed`` while it is built."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        async with self.waiter.watch(build_id) as woken:
            while True:
                woken.clear()
                image = await repository.build_image(self.store, build_id)
                if (image.namespace, image.environment) != (repo.namespace, repo.environment):
                    raise RegistryError("MANIFEST_UNKNOWN", {"build_id": build_id})
                if image.status == "pushed":
                    return image.digest
                if image.status == "failed":
                    raise RegistryError(
                        "MANIFEST_UNKNOWN", {"build_id": build_id, "reason": image.reason}
                    )
                if image.status != "pending":
                    raise RegistryError(
                        "MANIFEST_UNKNOWN", {"build_id": build_id, "reason": "build deleted"}
                    )
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise RegistryError(
                        "MANIFEST_UNKNOWN",
                        {"build_id": build_id, "reason": "the image is still being built"},
                    )
                try:
                    await asyncio.wait_for(woken.wait(), remaining)
                except TimeoutError:
                    continue

    async def _by_digest(self, repo: RepoName, digest: str) -> ResolvedManifest:
        keys = await repository.manifest_keys(self.pool, repo.namespace, repo.environment)
        for key in keys:
            oci_digest = digest_of_key(key)
            if oci_digest == digest:
                return ResolvedManifest(await self._body(oci_digest), digest)
        for key in keys:
            body = await self._body(digest_of_key(key))
            if any(v.digest == digest for v in variants(body)):
                return ResolvedManifest(body, digest)
        raise RegistryError("MANIFEST_UNKNOWN", {"digest": digest})

    async def _body(self, digest: str) -> bytes:
        """A manifest's bytes; content-addressed, so cached (small) once read and verified."""
        body = self._manifests.get(digest)
        if body is not None:
            return body
        try:
            body = await self.blobs.get_bytes(digest)
        except KeyError as exc:
            raise RegistryError("MANIFEST_UNKNOWN", {"digest": digest}) from exc
        if sha256_digest(body) == digest:
            self._manifests.put(digest, body)
        return body

    async def tags(self, name: str, caller: Caller) -> tuple[RepoName, list[str]]:
        repo = parse_name(name)
        caller.require_read(repo.namespace, repo.environment)
        env = await repository.environment(self.pool, repo.namespace, repo.environment)
        if env is None:
            raise RegistryError("NAME_UNKNOWN", {"name": repo.path})
        found = await repository.tags(self.pool, repo.namespace, repo.environment)
        if env["current_build_id"] is not None:
            image = await repository.build_image(self.store, int(env["current_build_id"]))
            if image.status == "pushed":
                found.append("latest")
        return repo, sorted(set(found))
