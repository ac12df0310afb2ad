"""Images on a configured upstream base: the base is pulled from a real registry (Debian's
docker-registry, serving it as Docker schema 2), its layers and config come first, the
result runs under runc, and builds go on from the stored base when the upstream is down."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from services.registry.base import find_busybox
from services.registry.blobs import Blobs
from services.registry.layers import Entry, write_layer
from services.registry.oci import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, canonical_json
from shared.settings import Settings
from tests.harness.fixtures_stack import Stack
from tests.harness.reference_registry import start_reference_registry
from tests.integration.test_registry import build, lockfiles, serve_registry  # noqa: F401
from tests.integration.test_registry_support import run, run_in_runc, skopeo

MARKER = "laid down by the upstream base\n"


def write_base_layout(layout: Path) -> tuple[str, str]:
    """An OCI layout holding a one-layer base image (busybox, /bin/sh, a marker file);
    returns the layer's (digest, diff_id)."""
    blobs = layout / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    entries = [
        Entry("bin/busybox", source=find_busybox()),
        Entry("bin/sh", symlink="busybox"),
        Entry("etc/base-marker", data=MARKER.encode()),
    ]
    layer = write_layer(entries, layout / "layer.tar.gz")
    layer.path.rename(blobs / layer.digest.removeprefix("sha256:"))
    config = canonical_json(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {
                "Env": ["PATH=/usr/bin:/bin", "BASE_MARKER=1"],
                "Cmd": ["/bin/sh"],
                "Labels": {"org.example.base": "yes"},
            },
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id]},
            "history": [{"created_by": "test base"}],
        }
    )
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": _put(blobs, config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": layer.digest, "size": layer.size}],
        }
    )
    ref = {"org.opencontainers.image.ref.name": "base"}
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": OCI_MANIFEST,
                "digest": _put(blobs, manifest),
                "size": len(manifest),
                "annotations": ref,
            }
        ],
    }
    (layout / "index.json").write_text(json.dumps(index))
    (layout / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    return layer.digest, layer.diff_id


def _put(blobs: Path, data: bytes) -> str:
    hexdigest = hashlib.sha256(data).hexdigest()
    (blobs / hexdigest).write_bytes(data)
    return f"sha256:{hexdigest}"


async def test_images_sit_on_the_configured_upstream_base(
    stack: Stack,
    settings: Settings,
    local_artifact_store,
    lockfiles,  # noqa: F811
    tiny_channel,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    layer_digest, diff_id = write_base_layout(tmp_path / "layout")
    upstream, host = start_reference_registry(tmp_path / "upstream")
    try:
        pushed = await run(
            *skopeo(
                "copy",
                "--format",
                "v2s2",
                "--dest-tls-verify=false",
                f"oci:{tmp_path / 'layout'}:base",
                f"docker://{host}/base/img:1",
            )
        )
        assert pushed.code == 0, pushed.err
        async with serve_registry(
            stack,
            settings,
            local_artifact_store,
            registry_base_image=f"{host}/base/img:1",
            registry_base_insecure=True,
        ) as served:
            _, digest = await build(served, "default", "a", lockfiles["bar"], tiny_channel.url)
            blobs = Blobs(local_artifact_store)
            manifest = json.loads(await blobs.get_bytes(digest))
            assert manifest["layers"][0]["digest"] == layer_digest
            assert manifest["layers"][0]["mediaType"] == OCI_LAYER_GZIP
            config = json.loads(await blobs.get_bytes(manifest["config"]["digest"]))
            env = config["config"]["Env"]
            assert env[0] == "PATH=/opt/conda/bin:/usr/bin:/bin"
            assert "BASE_MARKER=1" in env and "CONDA_PREFIX=/opt/conda" in env
            labels = config["config"]["Labels"]
            assert labels["org.example.base"] == "yes"
            assert labels["org.conda-store.environment"] == "a"
            assert config["rootfs"]["diff_ids"][0] == diff_id
            assert config["history"][0] == {"created_by": "test base"}
            assert len(config["history"]) == len(manifest["layers"])

            (tmp_path / "run").mkdir()
            out = await run_in_runc(
                served.host,
                "default/a:latest",
                ["/bin/sh", "-c", "cat /etc/base-marker; ls /opt/conda/conda-meta"],
                tmp_path / "run",
            )
            assert out.startswith(MARKER)
            assert "withprefix-1.0-h0_0.json" in out

            # the upstream goes away: the stored base still serves new builds
            upstream.terminate()
            upstream.wait(10)
            _, offline = await build(served, "default", "b", lockfiles["baz"], tiny_channel.url)
            later = json.loads(await blobs.get_bytes(offline))
            assert later["layers"][0]["digest"] == layer_digest
    finally:
        upstream.kill()
        upstream.wait(10)
