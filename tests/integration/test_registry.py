"""Registry acceptance on the tiny channel: real skopeo pulls, the distribution protocol,
auth, shared layers, reproducibility and garbage collection."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from services.registry.blobs import BLOB_PREFIX, Blobs
from services.registry.builder import ImageJob
from services.registry.service import Registry, open_registry
from shared.artifacts import ArtifactStore
from shared.auth import AuthenticationToken, encode_token
from shared.bus.jetstream import connect_nats
from shared.embedded.ports import free_port
from shared.events import (
    BuildCanceled,
    BuildDeleted,
    EnvironmentDeleted,
    PackageRef,
    Solved,
    new_event,
)
from shared.eventstore import EventStore
from shared.sbom import SbomSubject, build_sbom
from shared.settings import Settings
from shared.spec import CondaSpecification
from shared.submission import submit_specification
from tests.harness.fixtures_stack import Stack
from tests.harness.serving import serve_healthy
from tests.integration.test_registry_support import (
    append_packed,
    run,
    skopeo,
    solve_lockfile,
    submit_packed,
    submit_solved,
    wait_image,
)

SECRET = "registry-test-secret-of-at-least-32-bytes"
OCI = "application/vnd.oci.image.manifest.v1+json"
DOCKER = "application/vnd.docker.distribution.manifest.v2+json"


@dataclass
class Served:
    host: str
    registry: Registry
    settings: Settings
    stack: Stack
    artifacts: ArtifactStore

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    async def blob_count(self) -> int:
        return len(await self.artifacts.list(BLOB_PREFIX))


def token(bindings: dict[str, list[str]], namespace: str = "alice") -> str:
    return encode_token(
        AuthenticationToken(primary_namespace=namespace, role_bindings=bindings), SECRET
    )


@contextlib.asynccontextmanager
async def serve_registry(
    stack: Stack, settings: Settings, artifacts: ArtifactStore, **overrides: object
) -> AsyncIterator[Served]:
    settings = settings.model_copy(update={"secret": SECRET, **overrides})
    nc = await connect_nats(settings.nats_url, "test-registry")
    registry = await open_registry(settings, stack.store, nc, artifacts)
    await stack.run_workers(registry.builder, registry.preparer, registry.collector)
    port = free_port()
    server, stop = await serve_healthy(registry.app, port)
    try:
        yield Served(f"127.0.0.1:{port}", registry, settings, stack, artifacts)
    finally:
        stop.set()
        await server
        await registry.waiter.stop()
        await nc.close()


@pytest.fixture
async def served(
    stack: Stack, settings: Settings, local_artifact_store: ArtifactStore
) -> AsyncIterator[Served]:
    async with serve_registry(stack, settings, local_artifact_store) as s:
        yield s


@pytest.fixture(scope="session")
def lockfiles(tiny_channel, tmp_path_factory) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Lockfiles of a few tiny environments, solved once per session."""
    cache = tmp_path_factory.mktemp("gateway")
    wanted = {
        "bar": ["bar", "withprefix"],
        "baz": ["baz", "libfoo >=1.0"],
        "hello": ["hello-cli"],
    }

    async def solve_all() -> dict[str, str]:
        return {k: await solve_lockfile(tiny_channel.url, v, cache) for k, v in wanted.items()}

    result = asyncio.run(solve_all())
    return result


async def build(
    served: Served, namespace: str, name: str, lockfile: str, url: str
) -> tuple[int, str]:
    build_id = await submit_packed(
        served.stack.store, served.artifacts, namespace, name, url, ["bar"], lockfile
    )
    pushed = await wait_image(served.stack.store, build_id)
    await served.stack.projected()
    return build_id, pushed.manifest_digest


async def test_skopeo_pulls_by_latest_build_key_and_digest(
    served: Served, lockfiles, tiny_channel, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    build_id, digest = await build(served, "default", "tiny", lockfiles["bar"], tiny_channel.url)
    ref = f"docker://{served.host}/default/tiny"
    inspected = await run(*skopeo("inspect", "--tls-verify=false", f"{ref}:latest"))
    assert inspected.code == 0, inspected.err
    info = inspected.json()
    assert info["Digest"] == digest
    labels = info["Labels"]
    assert labels["org.conda-store.namespace"] == "default"
    assert labels["org.conda-store.environment"] == "tiny"
    assert labels["org.conda-store.build-id"] == str(build_id)
    assert "withprefix=1.0=h0_0" in labels["org.conda-store.packages"]
    assert any(e.startswith("PATH=/opt/conda/bin:") for e in info["Env"])
    build_key = labels["org.conda-store.build-key"]
    assert build_key in info["RepoTags"] and "latest" in info["RepoTags"]

    for i, reference in enumerate((f"{ref}:latest", f"{ref}:{build_key}", f"{ref}@{digest}")):
        out = tmp_path / f"pull{i}"
        copied = await run(*skopeo("copy", "--src-tls-verify=false", reference, f"dir:{out}"))
        assert copied.code == 0, copied.err
        manifest = json.loads((out / "manifest.json").read_text())
        assert len(manifest["layers"]) >= 4
        for layer in manifest["layers"]:
            assert (out / layer["digest"].split(":")[1]).stat().st_size == layer["size"]


async def test_distribution_protocol(served: Served, lockfiles, tiny_channel) -> None:  # type: ignore[no-untyped-def]
    _, digest = await build(served, "default", "proto", lockfiles["bar"], tiny_channel.url)
    base = served.url
    async with httpx.AsyncClient(base_url=base) as http:
        root = await http.get("/v2/")
        assert root.status_code == 401
        assert root.headers["www-authenticate"] == 'Basic realm="Registry Realm"'
        assert root.headers["docker-distribution-api-version"] == "registry/2.0"
        logged_in = await http.get("/v2/", headers={"Authorization": f"Bearer {token({})}"})
        assert logged_in.status_code == 200 and logged_in.json() == {}

        head = await http.head("/v2/default/proto/manifests/latest", headers={"Accept": OCI})
        assert head.status_code == 200
        assert head.headers["docker-content-digest"] == digest
        assert head.headers["content-type"] == OCI
        body = (
            await http.get("/v2/default/proto/manifests/latest", headers={"Accept": OCI})
        ).content
        assert int(head.headers["content-length"]) == len(body)
        manifest = json.loads(body)
        assert manifest["mediaType"] == OCI

        docker = await http.get("/v2/default/proto/manifests/latest", headers={"Accept": DOCKER})
        assert docker.headers["content-type"] == DOCKER
        assert docker.json()["mediaType"] == DOCKER
        docker_digest = docker.headers["docker-content-digest"]
        assert docker_digest != digest
        again = await http.get(f"/v2/default/proto/manifests/{docker_digest}")
        assert again.content == docker.content

        layer = manifest["layers"][0]
        blob_url = f"/v2/default/proto/blobs/{layer['digest']}"
        blob_head = await http.head(blob_url)
        assert blob_head.status_code == 200
        assert int(blob_head.headers["content-length"]) == layer["size"]
        whole = (await http.get(blob_url)).content
        assert len(whole) == layer["size"]
        part = await http.get(blob_url, headers={"Range": "bytes=10-19"})
        assert part.status_code == 206
        assert part.content == whole[10:20]
        assert part.headers["content-range"] == f"bytes 10-19/{layer['size']}"
        beyond = await http.get(blob_url, headers={"Range": f"bytes={layer['size']}-"})
        assert beyond.status_code == 416

        missing = await http.get("/v2/default/proto/blobs/sha256:" + "0" * 64)
        assert missing.status_code == 404
        assert missing.json()["errors"][0]["code"] == "BLOB_UNKNOWN"
        unknown = await http.get("/v2/default/nope/manifests/latest")
        assert unknown.json()["errors"][0]["code"] == "NAME_UNKNOWN"
        no_tag = await http.get("/v2/default/proto/manifests/0000-1-999-proto")
        assert no_tag.status_code == 404
        assert no_tag.json()["errors"][0]["code"] == "MANIFEST_UNKNOWN"

        await build(served, "default", "proto", lockfiles["baz"], tiny_channel.url)
        tags = (await http.get("/v2/default/proto/tags/list")).json()
        assert tags["name"] == "default/proto"
        assert len(tags["tags"]) == 3 and "latest" in tags["tags"]
        first = await http.get("/v2/default/proto/tags/list", params={"n": 1})
        assert len(first.json()["tags"]) == 1
        assert 'rel="next"' in first.headers["link"]
        rest = await http.get(
            "/v2/default/proto/tags/list", params={"n": 5, "last": first.json()["tags"][0]}
        )
        assert rest.json()["tags"] == sorted(tags["tags"])[1:]

        catalog = (await http.get("/v2/_catalog")).json()
        assert catalog["repositories"] == ["default/proto"]

        for method in ("POST", "PUT", "PATCH", "DELETE"):
            pushed = await http.request(method, "/v2/default/proto/blobs/uploads/")
            assert pushed.status_code == 405
            assert pushed.json()["errors"][0]["code"] == "UNSUPPORTED"


async def test_private_namespace_needs_a_token(
    served: Served, lockfiles, tiny_channel, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    await build(served, "private", "env", lockfiles["hello"], tiny_channel.url)
    ref = f"docker://{served.host}/private/env:latest"
    anonymous = await run(*skopeo("inspect", "--tls-verify=false", ref))
    assert anonymous.code != 0
    async with httpx.AsyncClient(base_url=served.url) as http:
        refused = await http.get("/v2/private/env/manifests/latest")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"] == 'Basic realm="Registry Realm"'
        assert refused.json()["errors"][0]["code"] == "UNAUTHORIZED"
        other = token({"elsewhere/*": ["admin"]})
        denied = await http.get(
            "/v2/private/env/manifests/latest", headers={"Authorization": f"Bearer {other}"}
        )
        assert denied.status_code == 403
        assert denied.json()["errors"][0]["code"] == "DENIED"
        assert (await http.get("/v2/_catalog")).json()["repositories"] == []

    good = token({"private/*": ["viewer"]})
    pulled = await run(
        *skopeo(
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            f"anyone:{good}",
            ref,
            f"dir:{tmp_path / 'p'}",
        )
    )
    assert pulled.code == 0, pulled.err
    basic = base64.b64encode(f"x:{good}".encode()).decode()
    async with httpx.AsyncClient(base_url=served.url) as http:
        ok = await http.get(
            "/v2/private/env/tags/list", headers={"Authorization": f"Basic {basic}"}
        )
        assert ok.status_code == 200


async def test_shared_layers_reproducible_digests_and_gc(
    served: Served, lockfiles, tiny_channel
) -> None:  # type: ignore[no-untyped-def]
    store = served.stack.store
    blobs = Blobs(served.artifacts)
    a_id, a_digest = await build(served, "default", "a", lockfiles["bar"], tiny_channel.url)
    after_a = await served.blob_count()
    b_id, b_digest = await build(served, "default", "b", lockfiles["baz"], tiny_channel.url)
    after_b = await served.blob_count()
    a = json.loads(await blobs.get_bytes(a_digest))
    b = json.loads(await blobs.get_bytes(b_digest))
    shared = {x["digest"] for x in a["layers"]} & {x["digest"] for x in b["layers"]}
    assert len(shared) >= 2  # the base layer and libfoo's layer
    new_b = len({x["digest"] for x in b["layers"]} - shared) + 2  # + config + manifest
    assert after_b - after_a == new_b

    # the same lockfile again: a's recipe is reused with no install (no package of the cache
    # is linked, so none is marked used), every layer is the same blob, nothing new is stored
    # but the (build-specific) config and manifest; rebuilding one build's image from scratch
    # gives its digest again
    cached = [p for p in served.registry.builder.pkgs_cache.iterdir() if p.is_dir()]
    for entry in cached:
        os.utime(entry, (0, 0))
    c_id, c_digest = await build(served, "default", "c", lockfiles["bar"], tiny_channel.url)
    c = json.loads(await blobs.get_bytes(c_digest))
    assert [x["digest"] for x in c["layers"]] == [x["digest"] for x in a["layers"]]
    assert cached and all(entry.stat().st_mtime == 0 for entry in cached)
    assert await served.blob_count() - after_b == 2
    events = await store.read_stream(f"build-{a_id}")
    packed = next(e.payload() for e in events if e.type == "Packed")
    assert ImageJob.of(packed) is None  # type: ignore[arg-type]  # a version 1 Packed
    job = ImageJob.of_history([e.payload() for e in events], a_id, packed.sbom_key)  # type: ignore[union-attr]
    fields = ("namespace", "environment", "build_key", "lockfile_key")
    v2 = packed.model_copy(update={f: getattr(job, f) for f in fields})
    assert ImageJob.of(v2) == job  # type: ignore[arg-type]  # version 2 carries it all
    served.registry.builder.layer_cache.root = served.registry.builder.layer_cache.root / "fresh"
    again = await served.registry.builder.build_and_push(job, store)  # type: ignore[arg-type]
    assert again.digest == a_digest

    # deleting a build keeps blobs other images use; deleting the rest frees everything
    before = await served.blob_count()
    await store.append(f"build-{b_id}", [new_event(BuildDeleted(build_id=b_id))])
    for _ in range(100):
        if await served.blob_count() < before:
            break
        await asyncio.sleep(0.1)
    assert await served.blob_count() == before - new_b
    assert await blobs.has(a_digest)
    for digest in shared:
        assert await blobs.has(digest)
    for name in ("a", "c"):
        await store.append(
            f"env-default-{name}",
            [new_event(EnvironmentDeleted(namespace="default", environment=name))],
        )
    for _ in range(100):
        if await served.blob_count() == 0:
            break
        await asyncio.sleep(0.1)
    assert await served.blob_count() == 0


async def test_an_environment_changed_since_its_last_image_is_imaged_as_if_afresh(
    served: Served, lockfiles, tiny_channel
) -> None:  # type: ignore[no-untyped-def]
    """The next image of an environment is installed by a transaction on the staging its last
    image left (only what changed is linked): its layers are those a fresh install gives."""
    blobs = Blobs(served.artifacts)
    builder = served.registry.builder
    await build(served, "default", "s", lockfiles["bar"], tiny_channel.url)
    _, changed = await build(served, "default", "s", lockfiles["baz"], tiny_channel.url)
    [staging] = [
        p
        for p in builder.stagings.root.rglob("*")
        if p.is_dir() and p.parent.parent == builder.stagings.root
    ]
    metas = sorted(p.name for p in (staging / "conda-meta").glob("*.json"))
    assert any(m.startswith("baz-") for m in metas)
    assert not any(m.startswith(("bar-", "withprefix-")) for m in metas)  # unlinked

    builder.layer_cache.root = builder.layer_cache.root / "fresh"  # no recipe, no known layer
    _, fresh = await build(served, "default", "t", lockfiles["baz"], tiny_channel.url)
    layers = [json.loads(await blobs.get_bytes(d))["layers"] for d in (changed, fresh)]
    assert [x["digest"] for x in layers[0]] == [x["digest"] for x in layers[1]]


async def test_layers_are_made_on_solved_and_packed_only_assembles_them(
    served: Served, lockfiles, tiny_channel, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    """The preparer makes an image's layers and recipe from ``Solved`` alone, before any
    ``Packed``: every layer blob is stored, no image exists yet and nothing is recorded. The
    ``Packed`` that follows installs nothing and gives the image a build without preparation
    gives; a canceled build is not prepared."""
    store, builder = served.stack.store, served.registry.builder
    blobs = Blobs(served.artifacts)
    build_id = await submit_solved(
        store, served.artifacts, "default", "early", tiny_channel.url, ["bar"], lockfiles["bar"]
    )
    deadline = asyncio.get_running_loop().time() + 60
    while not list(builder.layer_cache.root.glob("*.image.json")):
        assert asyncio.get_running_loop().time() < deadline, "no recipe made from Solved"
        await asyncio.sleep(0.1)
    [recipe_file] = builder.layer_cache.root.glob("*.image.json")
    recipe = json.loads(recipe_file.read_text())
    assert len(recipe["layers"]) >= 4
    for layer in recipe["layers"]:
        assert await blobs.has(layer["digest"]), layer["name"]
    assert await blobs.refs() == []  # no image, no reference: nothing kept for this build
    assert [e.type for e in await store.read_stream(f"build-{build_id}")] == [
        "SpecSubmitted",
        "Solved",
    ]

    def no_install(*args: object, **kwargs: object) -> None:
        raise AssertionError("the image build installed again after its preparation")

    with monkeypatch.context() as patched:
        patched.setattr("services.registry.builder.install_for_image", no_install)
        await append_packed(store, served.artifacts, build_id)
        prepared = await wait_image(store, build_id)
    manifest = json.loads(await blobs.get_bytes(prepared.manifest_digest))
    assert [x["digest"] for x in manifest["layers"]] == [x["digest"] for x in recipe["layers"]]

    builder.layer_cache.root = builder.layer_cache.root / "fresh"  # no recipe, no known layer
    _, unprepared = await build(served, "default", "late", lockfiles["bar"], tiny_channel.url)
    fresh = json.loads(await blobs.get_bytes(unprepared))
    assert [x["digest"] for x in fresh["layers"]] == [x["digest"] for x in manifest["layers"]]

    builder.layer_cache.root = builder.layer_cache.root / "canceled"
    canceled = await submit_specification(
        store, CondaSpecification(name="gone", channels=[tiny_channel.url], dependencies=["baz"]),
        "default",
    )  # fmt: skip
    key = f"builds/{canceled.build_id}/conda-lock.yml"
    await served.artifacts.put_bytes(key, lockfiles["baz"].encode())
    solved = Solved(build_id=canceled.build_id, lockfile_key=key, yaml_key=key, packages=[])
    gone = BuildCanceled(build_id=canceled.build_id)
    stream = f"build-{canceled.build_id}"
    [*_, recorded] = await store.append(stream, [new_event(gone), new_event(solved)])
    while not await store.is_tracked("registry-preparer", str(recorded.event_id)):
        assert asyncio.get_running_loop().time() < deadline + 60, "the Solved was not handled"
        await asyncio.sleep(0.1)
    assert not list(builder.layer_cache.root.glob("*")), "a canceled build was prepared"


async def test_a_registry_started_before_any_projector_ran_answers_without_a_500(
    event_store: EventStore, settings: Settings, local_artifact_store: ArtifactStore
) -> None:
    """On many machines the registry may come up first: no read-model table exists yet."""
    settings = settings.model_copy(update={"secret": SECRET})
    nc = await connect_nats(settings.nats_url, "test-registry-first")
    registry = await open_registry(settings, event_store, nc, local_artifact_store)
    try:
        transport = httpx.ASGITransport(app=registry.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://registry") as http:
            auth = {"Authorization": f"Bearer {token({'*/*': ['admin']})}"}
            catalog = await http.get("/v2/_catalog", headers=auth)
            assert catalog.status_code == 200 and catalog.json()["repositories"] == []
            missing = await http.get("/v2/default/none/manifests/latest", headers=auth)
            assert missing.status_code == 404, missing.text
    finally:
        await registry.waiter.stop()
        await nc.close()


async def test_the_image_carries_its_sbom_as_a_label_and_a_blob(
    served: Served, lockfiles, tiny_channel, tmp_path: Path
) -> None:  # type: ignore[no-untyped-def]
    """``org.conda-store.sbom`` names the build's SBOM, ``/v2/.../blobs/<digest>`` serves it,
    rebuilding the image gives the same digest, and deleting the environment frees it."""
    store = served.stack.store
    packages = [PackageRef(name="bar", version="1.0", build="h0_0", channel=tiny_channel.url)]
    subject = SbomSubject("default", "bom", 1, "k", datetime(2024, 1, 1, tzinfo=UTC))
    document = build_sbom(subject, packages)
    sbom_digest = "sha256:" + hashlib.sha256(document).hexdigest()
    build_id = await submit_packed(
        store, served.artifacts, "default", "bom", tiny_channel.url, ["bar"], lockfiles["bar"],
        document,
    )  # fmt: skip
    digest = (await wait_image(store, build_id)).manifest_digest
    await served.stack.projected()

    inspected = await run(
        *skopeo("inspect", "--tls-verify=false", f"docker://{served.host}/default/bom:latest")
    )
    assert inspected.code == 0, inspected.err
    assert inspected.json()["Labels"]["org.conda-store.sbom"] == sbom_digest
    async with httpx.AsyncClient(base_url=served.url) as http:
        head = await http.head(f"/v2/default/bom/blobs/{sbom_digest}")
        assert head.status_code == 200 and int(head.headers["content-length"]) == len(document)
        blob = await http.get(f"/v2/default/bom/blobs/{sbom_digest}")
        assert blob.status_code == 200 and blob.content == document
        assert blob.headers["docker-content-digest"] == sbom_digest
    copied = await run(
        *skopeo(
            "copy", "--src-tls-verify=false", f"docker://{served.host}/default/bom@{digest}",
            f"dir:{tmp_path / 'pulled'}",
        )
    )  # fmt: skip
    assert copied.code == 0, copied.err

    # an image without an SBOM has no such label
    await build(served, "default", "plain", lockfiles["bar"], tiny_channel.url)
    plain = await run(
        *skopeo("inspect", "--tls-verify=false", f"docker://{served.host}/default/plain:latest")
    )
    assert "org.conda-store.sbom" not in plain.json()["Labels"]

    # reproducible: the same build's image, rebuilt from scratch, has the same digest
    events = await store.read_stream(f"build-{build_id}")
    packed = next(e.payload() for e in events if e.type == "Packed")
    job = ImageJob.of(packed)  # type: ignore[arg-type]
    assert job is not None and job.sbom_key == f"builds/{build_id}/sbom.cdx.json"
    served.registry.builder.layer_cache.root = served.registry.builder.layer_cache.root / "fresh"
    again = await served.registry.builder.build_and_push(job, store)
    assert again.digest == digest

    blobs = Blobs(served.artifacts)
    await store.append(
        "env-default-bom",
        [new_event(EnvironmentDeleted(namespace="default", environment="bom"))],
    )
    for _ in range(100):
        if not await blobs.has(sbom_digest):
            break
        await asyncio.sleep(0.1)
    assert not await blobs.has(sbom_digest)
