"""Build an OCI image of one environment from its installed staging prefix.

Layers, in order: ``core`` base (busybox, glibc, users), ``libs`` (host libraries the
environment links), one layer per conda package, the final layer (conda-meta and leftovers).
Layers already known (same cache key, blob already stored) are not rebuilt; the others are
compressed in parallel threads (ISA-L releases the GIL).

Every image uses the same prefix (``/opt/conda`` by default) rather than one per environment:
rattler patches the prefix into files, and tar entry names contain it, so only a common prefix
lets a package's layer be byte-identical, hence one stored blob, across environments.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from shared.fileops import write_text_atomic

from . import base, elf
from .elf import ElfNeeds
from .layers import Entry, LayerBlob, write_layer
from .oci import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    Descriptor,
    canonical_json,
    image_manifest,
    sha256_digest,
)
from .plan import FORMAT_VERSION, LayerPlan, PackageLayer, plan_layers, prefix_entries

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
EPOCH = "1970-01-01T00:00:00Z"
LABEL_PREFIX = "org.conda-store"

HasBlob = Callable[[str], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class ImageLabels:
    namespace: str
    environment: str
    build_id: int
    build_key: str
    pip_packages: tuple[str, ...] = ()
    sbom_digest: str = ""
    """The ``sha256:`` digest of the build's SBOM, a blob of the registry; "" without one."""


@dataclass(frozen=True, slots=True)
class Layer:
    """A layer of the image: a local file to upload, or (``path`` None) a blob already stored."""

    name: str
    digest: str
    diff_id: str
    size: int
    path: Path | None = None
    media_type: str = OCI_LAYER_GZIP


@dataclass(frozen=True, slots=True)
class UpstreamBase:
    """A configured upstream base image: its layers (downloaded, or already stored) and its
    config, whose ``Env``, ``Cmd``, ``Entrypoint``, ``User`` and labels the image keeps."""

    layers: list[Layer]
    config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ImageRecipe:
    """An image's own layers (an upstream base's left out) and its package list: all that a
    rebuild of the same package set needs, with its own labels, instead of installing again."""

    layers: list[Layer]
    packages: list[str]

    def as_json(self) -> dict[str, Any]:
        layers = [
            {"name": x.name, "digest": x.digest, "diff_id": x.diff_id, "size": x.size}
            | {"media_type": x.media_type}
            for x in self.layers
        ]
        return {"layers": layers, "packages": self.packages}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageRecipe:
        return cls([Layer(**layer) for layer in data["layers"]], list(data["packages"]))


@dataclass(slots=True)
class BuiltImage:
    manifest: bytes
    config: bytes
    layers: list[Layer] = field(default_factory=list)
    sbom: bytes | None = None
    """The build's SBOM, stored as a blob beside the layers (the config's label names it)."""
    recipe: ImageRecipe | None = None

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def config_digest(self) -> str:
        return sha256_digest(self.config)

    def blob_digests(self) -> list[str]:
        """Every blob the image needs kept: config, layers and the SBOM its label names."""
        sbom = [sha256_digest(self.sbom)] if self.sbom is not None else []
        return [self.config_digest, *(layer.digest for layer in self.layers), *sbom]


class LayerCache:
    """Remembers (on local disk) what a package layer's cache key produced: its digests, to
    skip recompressing, and what its ELF files need, to skip reading them again; and the
    recipe of the image of each package set."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def recipe(self, key: str) -> ImageRecipe | None:
        try:
            return ImageRecipe.from_json(json.loads((self.root / f"{key}.image.json").read_text()))
        except (FileNotFoundError, ValueError, KeyError, TypeError):
            return None

    def put_recipe(self, key: str, recipe: ImageRecipe) -> None:
        write_text_atomic(self.root / f"{key}.image.json", json.dumps(recipe.as_json()))

    def needs(self, staging: Path, package: PackageLayer) -> ElfNeeds:
        path = self.root / f"{package.cache_key}.elf.json"
        try:
            return ElfNeeds.from_json(json.loads(path.read_text()))
        except (FileNotFoundError, ValueError, KeyError):
            pass
        found = elf.scan(staging, package.files)
        write_text_atomic(path, json.dumps(found.as_json()))
        return found

    def get(self, key: str) -> Layer | None:
        try:
            data = json.loads((self.root / f"{key}.json").read_text())
        except (FileNotFoundError, ValueError):
            return None
        return Layer(data["name"], data["digest"], data["diff_id"], data["size"])

    def put(self, key: str, layer: Layer) -> None:
        fields = {"name": layer.name, "digest": layer.digest}
        fields |= {"diff_id": layer.diff_id, "size": layer.size}
        write_text_atomic(self.root / f"{key}.json", json.dumps(fields))


def _entries_key(entries: list[Entry]) -> str:
    """A cache key for host-file layers: paths, sizes and mtimes of their sources."""
    parts = [FORMAT_VERSION]
    for e in sorted(entries, key=lambda e: e.arcname):
        stamp = ""
        if e.source is not None:
            st = e.source.lstat()
            stamp = f"{st.st_size}:{st.st_mtime_ns}:{st.st_mode}"
        data = hashlib.sha256(e.data).hexdigest() if e.data is not None else ""
        parts.append(f"{e.arcname}|{e.source}|{e.symlink}|{data}|{e.mode}|{stamp}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


class ImageWriter:
    """Turns a staging prefix into layers, a config and an OCI manifest on local disk."""

    def __init__(
        self, image_prefix: str, layer_cache: LayerCache, has_blob: HasBlob, threads: int = 0
    ) -> None:
        self.image_prefix = "/" + image_prefix.strip("/")
        self.cache = layer_cache
        self.has_blob = has_blob
        self.slots = asyncio.Semaphore(threads or max(os.cpu_count() or 1, 1))

    async def _layer(self, name: str, entries: list[Entry], key: str | None, out: Path) -> Layer:
        if key is not None:
            known = self.cache.get(key)
            if known is not None and await self.has_blob(known.digest):
                return Layer(name, known.digest, known.diff_id, known.size)
        async with self.slots:
            blob: LayerBlob = await asyncio.to_thread(write_layer, entries, out)
        layer = Layer(name, blob.digest, blob.diff_id, blob.size, blob.path)
        if key is not None:
            self.cache.put(key, Layer(name, blob.digest, blob.diff_id, blob.size))
        return layer

    def _elf_needs(self, staging: Path, plan: LayerPlan) -> ElfNeeds:
        """What the prefix's ELF files need: each package's as first read, the rest now."""
        total = ElfNeeds()
        for package in plan.installed:
            total.add(self.cache.needs(staging, package))
        total.add(elf.scan(staging, plan.unowned))
        return total

    async def _offline_base(
        self, staging: Path, plan: LayerPlan, work: Path
    ) -> list[Awaitable[Layer]]:
        """busybox, the host's glibc and the libraries the environment links against."""
        core = await asyncio.to_thread(base.core_entries)
        taken = {e.arcname for e in core}
        needs = await asyncio.to_thread(self._elf_needs, staging, plan)
        libs = await asyncio.to_thread(
            base.library_entries, staging, needs, plan.file_names(), taken
        )
        jobs = [self._layer("base", core, _entries_key(core), work / "base.tar.gz")]
        if libs:
            jobs.append(self._layer("libs", libs, _entries_key(libs), work / "libs.tar.gz"))
        return jobs

    async def build(
        self, staging: Path, work: Path, labels: ImageLabels, upstream: UpstreamBase | None = None
    ) -> BuiltImage:
        """Write every new layer into ``work`` and return the image documents; the layers sit
        on ``upstream`` when given, else on the offline base."""
        plan = await asyncio.to_thread(plan_layers, staging, self.image_prefix)
        jobs: list[Awaitable[Layer]] = []
        if upstream is None:
            jobs += await self._offline_base(staging, plan, work)
        for i, package in enumerate(plan.packages):
            entries = prefix_entries(staging, self.image_prefix, package.files)
            jobs.append(
                self._layer(package.label, entries, package.cache_key, work / f"p{i}.tar.gz")
            )
        rest = prefix_entries(staging, self.image_prefix, plan.rest)
        jobs.append(self._layer("environment", rest, None, work / "rest.tar.gz"))
        layers = list(await asyncio.gather(*jobs))
        built = self.assemble(ImageRecipe(layers, plan.all_packages), labels, upstream)
        built.recipe = ImageRecipe(
            [Layer(x.name, x.digest, x.diff_id, x.size, None, x.media_type) for x in layers],
            plan.all_packages,
        )
        return built

    def assemble(
        self, recipe: ImageRecipe, labels: ImageLabels, upstream: UpstreamBase | None = None
    ) -> BuiltImage:
        """The config and manifest of ``recipe``'s layers, with ``labels``, on ``upstream``."""
        layers = list(recipe.layers)
        document = self._config(layers, labels, recipe.packages)
        if upstream is not None:
            layers = [*upstream.layers, *layers]
            document = on_upstream(document, upstream, self.image_prefix)
        config = canonical_json(document)
        manifest = image_manifest(
            Descriptor(OCI_CONFIG, sha256_digest(config), len(config)),
            [Descriptor(layer.media_type, layer.digest, layer.size) for layer in layers],
        )
        return BuiltImage(canonical_json(manifest), config, layers)

    async def base_identity(self, upstream: UpstreamBase | None) -> str:
        """What the layers under the environment are, for the key of an image recipe."""
        if upstream is not None:
            return "upstream:" + ",".join(layer.digest for layer in upstream.layers)
        return "offline:" + _entries_key(await asyncio.to_thread(base.core_entries))

    def _config(self, layers: list[Layer], labels: ImageLabels, packages: list[str]) -> dict:  # type: ignore[type-arg]
        prefix = self.image_prefix
        return {
            "architecture": "amd64",
            "os": "linux",
            "created": EPOCH,
            "config": {
                "Env": [
                    f"PATH={prefix}/bin:{DEFAULT_PATH}",
                    f"CONDA_PREFIX={prefix}",
                    "LANG=C.UTF-8",
                ],
                "Cmd": ["/bin/sh"],
                "WorkingDir": "/",
                "Labels": {
                    f"{LABEL_PREFIX}.namespace": labels.namespace,
                    f"{LABEL_PREFIX}.environment": labels.environment,
                    f"{LABEL_PREFIX}.build-id": str(labels.build_id),
                    f"{LABEL_PREFIX}.build-key": labels.build_key,
                    f"{LABEL_PREFIX}.prefix": prefix,
                    f"{LABEL_PREFIX}.packages": " ".join(packages),
                    **(
                        {f"{LABEL_PREFIX}.pip-packages": " ".join(labels.pip_packages)}
                        if labels.pip_packages
                        else {}
                    ),
                    **({f"{LABEL_PREFIX}.sbom": labels.sbom_digest} if labels.sbom_digest else {}),
                    "org.opencontainers.image.title": f"{labels.namespace}/{labels.environment}",
                },
            },
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "history": [
                {"created": EPOCH, "created_by": f"conda-store: {layer.name}"} for layer in layers
            ],
        }


def on_upstream(document: dict[str, Any], upstream: UpstreamBase, prefix: str) -> dict[str, Any]:
    """An image config for our layers stacked on ``upstream``: its layers and history first;
    its environment, command, user and labels kept, with the environment's ``bin`` put first
    on its ``PATH``."""
    ours = document["config"]
    theirs = upstream.config.get("config") or {}
    env = [e for e in theirs.get("Env") or [] if not e.startswith("PATH=")]
    their_path = next(
        (e[5:] for e in theirs.get("Env") or [] if e.startswith("PATH=")), DEFAULT_PATH
    )
    names = {e.split("=", 1)[0] for e in env}
    env = [f"PATH={prefix}/bin:{their_path}", *env]
    env += [e for e in ours["Env"] if e.split("=", 1)[0] not in names | {"PATH"}]
    config = {**theirs, "Env": env, "Labels": {**(theirs.get("Labels") or {}), **ours["Labels"]}}
    if not theirs.get("Cmd") and not theirs.get("Entrypoint"):
        config["Cmd"] = ours["Cmd"]
    config.setdefault("WorkingDir", ours["WorkingDir"])
    history = upstream.config.get("history") or [
        {"created": EPOCH, "created_by": "upstream base layer"} for _ in upstream.layers
    ]
    base_ids = upstream.config.get("rootfs", {}).get("diff_ids", [])
    return {
        **document,
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": [*base_ids, *document["rootfs"]["diff_ids"]]},
        "history": [*history, *document["history"]],
    }
