"""The base-image client against a registry that wants Docker Hub's token dance: 401 with a
Bearer challenge, an anonymous token from the realm, a manifest list, Docker media types."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest
from fastapi import FastAPI, Request, Response

from services.registry.oci import (
    DOCKER_CONFIG,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_LAYER_GZIP,
)
from services.registry.upstream import UpstreamError, UpstreamRegistry, parse_reference
from shared.embedded.ports import free_port
from tests.harness.serving import serve_healthy

TOKEN = "anonymous-pull-token"


def digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def fake_hub(port: int) -> tuple[FastAPI, dict[str, bytes], dict[str, int]]:
    raw = b"pretend this is a tar"
    layer = gzip.compress(raw, mtime=0)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": ["PATH=/usr/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [digest(raw)]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST,
            "config": {"mediaType": DOCKER_CONFIG, "digest": digest(config), "size": len(config)},
            "layers": [
                {"mediaType": DOCKER_LAYER_GZIP, "digest": digest(layer), "size": len(layer)}
            ],
        }
    ).encode()
    listing = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": DOCKER_MANIFEST_LIST,
            "manifests": [
                {
                    "mediaType": DOCKER_MANIFEST,
                    "digest": "sha256:" + "0" * 64,
                    "size": 1,
                    "platform": {"os": "linux", "architecture": "arm64"},
                },
                {
                    "mediaType": DOCKER_MANIFEST,
                    "digest": digest(manifest),
                    "size": len(manifest),
                    "platform": {"os": "linux", "architecture": "amd64"},
                },
            ],
        }
    ).encode()
    liar = "sha256:" + "1" * 64
    blobs = {digest(config): config, digest(layer): layer, liar: b"not what the digest says"}
    manifests = {"1": listing, digest(manifest): manifest}
    counts = {"token": 0}
    app = FastAPI()
    challenge = (
        f'Bearer realm="http://127.0.0.1:{port}/token",service="fakehub",'
        f'scope="repository:library/base:pull"'
    )

    def refused(request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return Response(status_code=401, headers={"WWW-Authenticate": challenge})
        return None

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {}

    @app.get("/token")
    async def token(service: str, scope: str) -> dict[str, str]:
        counts["token"] += 1
        assert (service, scope) == ("fakehub", "repository:library/base:pull")
        return {"token": TOKEN}

    @app.get("/v2/library/base/manifests/{reference}")
    async def get_manifest(reference: str, request: Request) -> Response:
        body = manifests.get(reference)
        if body is None:
            return Response(status_code=404)
        media_type = json.loads(body)["mediaType"]
        return refused(request) or Response(body, media_type=media_type)

    @app.get("/v2/library/base/blobs/{blob}")
    async def get_blob(blob: str, request: Request) -> Response:
        return refused(request) or Response(blobs[blob], media_type="application/octet-stream")

    return app, {"layer": layer, "liar": liar.encode()}, counts


async def test_bearer_challenge_manifest_list_and_checked_blobs(tmp_path: Path) -> None:
    port = free_port()
    app, parts, counts = fake_hub(port)
    task, stop = await serve_healthy(app, port)
    try:
        client = UpstreamRegistry(
            parse_reference(f"127.0.0.1:{port}/library/base:1"), insecure=True
        )
        base = await client.resolve()
        assert [layer.media_type for layer in base.layers] == [OCI_LAYER_GZIP]
        assert base.diff_ids == [digest(b"pretend this is a tar")]
        assert base.config["config"]["Env"] == ["PATH=/usr/bin"]
        assert counts["token"] == 1  # the token is reused for the following requests

        size = await client.download(base.layers[0].digest, tmp_path / "layer")
        assert (tmp_path / "layer").read_bytes() == parts["layer"] and size == len(parts["layer"])

        with pytest.raises(UpstreamError, match="another digest"):
            await client.download(parts["liar"].decode(), tmp_path / "liar")
        assert not (tmp_path / "liar").exists()

        missing = UpstreamRegistry(
            parse_reference(f"127.0.0.1:{port}/library/base:nope"), insecure=True
        )
        with pytest.raises(UpstreamError, match="404"):
            await missing.resolve()
    finally:
        stop.set()
        await task
