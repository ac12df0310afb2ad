"""Image builder worker: ``Packed`` → install the lockfile for ``/opt/conda`` → ``ImagePushed``.

The lockfile is the one the solver recorded for the build (``Solved.lockfile_key``, carried
by ``Packed`` version 2), so the image holds exactly what the archive holds. The build's SBOM
(``Packed.sbom_key``) is stored as a blob of the registry and named by the image's
``org.conda-store.sbom`` label, so ``GET /v2/<ns>/<env>/blobs/<that digest>`` returns it and
whoever pulls the image can find what is inside. Handling is
idempotent: a build whose stream has ``ImagePushed`` after its ``Packed`` (or was deleted or
canceled since) is skipped, and blob uploads skip blobs already stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from shared.artifacts import ArtifactStore
from shared.bus.consumer import HandlerContext, Worker
from shared.events import (
    NO_IMAGE_REASON,
    BuildCanceled,
    BuildDeleted,
    ImageFailed,
    ImagePushed,
    Packed,
    RecordedEvent,
    Solved,
    SpecSubmitted,
    new_event,
    stream_of_build,
)
from shared.eventstore import Append, EventStore
from shared.lockfile import LockContents, content_key, read_lockfile
from shared.logging import get_logger
from shared.sbom import MEDIA_TYPE as SBOM_MEDIA_TYPE
from shared.settings import Settings

from .blobs import Blobs, ImageRef, blob_key, gc_lock
from .image import (
    BuiltImage,
    ImageLabels,
    ImageRecipe,
    ImageWriter,
    Layer,
    LayerCache,
    UpstreamBase,
)
from .install import IMAGE_PLATFORM, install_for_image, install_pip_for_image
from .oci import OCI_CONFIG, OCI_MANIFEST, sha256_digest
from .plan import FORMAT_VERSION
from .staging import Stagings
from .upstream import ResolvedBaseCache, UpstreamError, UpstreamRegistry, parse_reference

log = get_logger(__name__)


class BlobVanished(RuntimeError):
    """A blob the image reuses was garbage-collected meanwhile; the retry rebuilds it."""


@dataclass(frozen=True, slots=True)
class ImageJob:
    """What one image needs: from a version 2 ``Packed`` alone, or (version 1) its stream."""

    build_id: int
    namespace: str
    environment: str
    build_key: str
    lockfile_key: str
    make_image: bool
    sbom_key: str | None = None

    @classmethod
    def of(cls, packed: Packed) -> ImageJob | None:
        if packed.namespace is None or packed.environment is None or not packed.lockfile_key:
            return None
        return cls(
            packed.build_id,
            packed.namespace,
            packed.environment,
            packed.build_key,
            packed.lockfile_key,
            packed.make_image,
            packed.sbom_key,
        )

    @classmethod
    def of_history(
        cls, history: Sequence[object], build_id: int, sbom_key: str | None = None
    ) -> ImageJob:
        """From the build's ``SpecSubmitted`` and last ``Solved``: to upcast a version 1
        ``Packed``, or to prepare the image before there is any ``Packed``."""
        submitted = next(e for e in history if isinstance(e, SpecSubmitted))
        solved = [e for e in history if isinstance(e, Solved)]
        if not solved:
            raise ValueError(f"build {build_id} has no Solved event (no lockfile)")
        return cls(
            build_id,
            submitted.namespace,
            submitted.environment,
            submitted.build_key,
            solved[-1].lockfile_key,
            submitted.make_image,
            sbom_key,
        )


class ImageBuilder(Worker):
    name = "registry-builder"
    event_types = ("Packed",)

    def __init__(self, artifacts: ArtifactStore, settings: Settings) -> None:
        self.blobs = Blobs(artifacts)
        self.artifacts = artifacts
        self.settings = settings
        self.image_prefix = settings.registry_image_prefix
        cache = settings.cache_root
        self.pkgs_cache = settings.package_cache_dir
        self.layer_cache = LayerCache(cache / "oci-layers")
        self.work_root = cache / "registry-work"
        self.stagings = Stagings(cache / "registry-staging")
        self.upstream = (
            UpstreamRegistry(
                parse_reference(settings.registry_base_image),
                insecure=settings.registry_base_insecure,
                username=settings.registry_base_username,
                password=settings.registry_base_password,
            )
            if settings.registry_base_image
            else None
        )
        self.resolved_bases = ResolvedBaseCache(cache / "oci-base")

    async def handle(self, event: RecordedEvent, ctx: HandlerContext) -> Sequence[Append]:
        packed = event.payload()
        assert isinstance(packed, Packed)
        build_id = packed.build_id
        # the whole stream: a cancel committed just before this Packed (by a packer without the
        # expected-version check) leaves the build CANCELED all the same
        history = [e.payload() for e in await ctx.store.read_stream(event.stream)]
        if any(isinstance(e, ImagePushed | BuildDeleted | BuildCanceled) for e in history):
            log.info("image not needed (already pushed, or build deleted/canceled)")
            return []
        job = ImageJob.of(packed) or ImageJob.of_history(history, build_id, packed.sbom_key)
        if not job.make_image:
            log.info("image not made", reason=NO_IMAGE_REASON)
            return []
        log.info("building image", attempt=ctx.attempt)
        if self.settings.registry_test_delay_s:
            await asyncio.sleep(self.settings.registry_test_delay_s)
        image = await self.build_and_push(job, ctx.store)
        log.info("image pushed", digest=image.digest, layers=len(image.layers))
        pushed = ImagePushed(
            build_id=build_id,
            manifest_digest=image.digest,
            manifest_key=blob_key(image.digest),
            tags=[job.build_key] if job.build_key else [],
        )
        return [Append(event.stream, [new_event(pushed, causation=event)])]

    def exhausted(self, event: RecordedEvent, error: str) -> Sequence[Append]:
        build_id = int(event.data["build_id"])
        failed = ImageFailed(build_id=build_id, reason=f"image build failed: {error}")
        return [Append(stream_of_build(build_id), [new_event(failed, causation=event)])]

    async def build_and_push(self, job: ImageJob, store: EventStore) -> BuiltImage:
        """Install, write layers, then reference and upload every blob."""
        with self._work() as work:
            image = await self._image(job, work)
            ref = ImageRef(
                build_id=job.build_id,
                namespace=job.namespace,
                environment=job.environment,
                manifest_digest=image.digest,
                blobs=(image.digest, *image.blob_digests()),
            )
            async with gc_lock(store.pool, exclusive=False):
                await self.blobs.write_ref(ref)
                await self._upload(image)
            return image

    async def prepare(self, job: ImageJob) -> None:
        """Make and store the layers and recipe of ``job``'s package set ahead of its
        ``Packed``: the image build then finds the recipe and only assembles. No reference
        is written, so no blob is kept for this build; a layer blob stays (content-addressed,
        shared by every image of its package) until no image needs it."""
        with self._work() as work:
            image = await self._image(job, work)
            await self._upload_layers(image)

    @contextlib.contextmanager
    def _work(self) -> Iterator[Path]:
        self.work_root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.work_root, prefix="img-") as tmp:
            yield Path(tmp)

    async def _image(self, job: ImageJob, work: Path) -> BuiltImage:
        """The image documents, with every layer not yet stored written into ``work``: from
        the recipe of the same package set when there is one, else installed and layered."""
        lockfile = work / "conda-lock.yml"
        await self.artifacts.download_file(job.lockfile_key, lockfile)
        contents = await asyncio.to_thread(read_lockfile, lockfile, IMAGE_PLATFORM)
        writer = ImageWriter(self.image_prefix, self.layer_cache, self.blobs.has)
        sbom = await self.artifacts.get_bytes(job.sbom_key) if job.sbom_key else None
        labels = ImageLabels(
            job.namespace,
            job.environment,
            job.build_id,
            job.build_key,
            tuple(f"{pin.name}=={pin.version}" for pin in contents.pip),
            sha256_digest(sbom) if sbom is not None else "",
        )
        upstream = await self._upstream_base(work)
        recipe_key = content_key(
            contents, FORMAT_VERSION, self.image_prefix, await writer.base_identity(upstream)
        )
        known = await self._known_recipe(recipe_key)
        if known is not None:
            image = writer.assemble(known, labels, upstream)
        else:
            image = await self._build(job, contents, work, writer, labels, upstream, recipe_key)
        image.sbom = sbom
        return image

    async def _known_recipe(self, key: str) -> ImageRecipe | None:
        """The recipe of an identical package set imaged before, if all its layers are
        still stored (GC may have taken some)."""
        recipe = await asyncio.to_thread(self.layer_cache.recipe, key)
        if recipe is None or not await self._all_stored(recipe):
            return None
        log.info("identical package set imaged before: its layers reused, no install")
        return recipe

    async def _build(
        self,
        job: ImageJob,
        contents: LockContents,
        work: Path,
        writer: ImageWriter,
        labels: ImageLabels,
        upstream: UpstreamBase | None,
        recipe_key: str,
    ) -> BuiltImage:
        """Install the environment at the image prefix, then write its layers and remember
        their recipe: into the environment's kept staging (only what changed is linked), or
        with pip packages into a fresh one in ``work``."""
        if contents.pip:
            staging = work / "prefix"
            await install_for_image(contents.conda, staging, self.image_prefix, self.pkgs_cache)
            await install_pip_for_image(
                staging, contents.pip, self.image_prefix, self.settings.pip_index, work
            )
            image = await writer.build(staging, work, labels, upstream)
        else:
            async with self.stagings.hold(job.namespace, job.environment) as staging:
                # whoever held the staging before (the same build's preparation) may have
                # made this very recipe meanwhile
                known = await self._known_recipe(recipe_key)
                if known is not None:
                    return writer.assemble(known, labels, upstream)
                await install_for_image(contents.conda, staging, self.image_prefix, self.pkgs_cache)
                image = await writer.build(staging, work, labels, upstream)
        if image.recipe is not None:
            await asyncio.to_thread(self.layer_cache.put_recipe, recipe_key, image.recipe)
        return image

    async def _all_stored(self, recipe: ImageRecipe) -> bool:
        """Whether every layer of ``recipe`` is still a blob (GC may have taken some)."""
        for layer in recipe.layers:
            if not await self.blobs.has(layer.digest):
                return False
        return True

    async def _upstream_base(self, work: Path) -> UpstreamBase | None:
        """The configured base image's layers, each downloaded only if not stored yet."""
        if self.upstream is None:
            return None
        reference = str(self.upstream.ref)
        try:
            resolved = await self.upstream.resolve()
            await asyncio.to_thread(self.resolved_bases.put, resolved)
        except (UpstreamError, httpx.HTTPError) as exc:
            known = await asyncio.to_thread(self.resolved_bases.get, reference)
            if known is None:
                raise UpstreamError(f"base image {reference}: {exc}") from exc
            log.warning("base image unreachable; using its last resolution", error=str(exc))
            resolved = known
        layers = []
        for i, blob in enumerate(resolved.layers):
            path = None
            if not await self.blobs.has(blob.digest):
                path = work / f"upstream-{i}.blob"
                await self.upstream.download(blob.digest, path)
            layers.append(
                Layer(
                    "upstream", blob.digest, resolved.diff_ids[i], blob.size, path, blob.media_type
                )
            )
        log.info("base image", reference=reference, digest=resolved.digest, layers=len(layers))
        return UpstreamBase(layers, resolved.config)

    async def _upload_layers(self, image: BuiltImage) -> int:
        """Upload the layers written for ``image``; returns how many were new."""
        uploaded = 0
        for layer in image.layers:
            if layer.path is None:
                if not await self.blobs.has(layer.digest):
                    raise BlobVanished(f"layer {layer.digest} was removed while building")
                continue
            uploaded += await self.blobs.put_file(layer.digest, layer.path)
        return uploaded

    async def _upload(self, image: BuiltImage) -> None:
        uploaded = await self._upload_layers(image)
        if image.sbom is not None:
            await self.blobs.put_bytes(sha256_digest(image.sbom), image.sbom, SBOM_MEDIA_TYPE)
        await self.blobs.put_bytes(image.config_digest, image.config, OCI_CONFIG)
        # the manifest goes last: once it exists, every blob it names exists too
        await self.blobs.put_bytes(image.digest, image.manifest, OCI_MANIFEST)
        log.info("blobs uploaded", new_layers=uploaded, layers=len(image.layers))
