"""Registry end to end on the realistic channel (real CPython + numpy): the pulled image runs
under runc, and an on-demand image is solved, packed and built on its first pull."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from services.registry.blobs import Blobs
from services.registry.builder import ImageJob
from shared.settings import Settings
from tests.channels.wheels import make_wheel
from tests.harness.fixtures_stack import Stack
from tests.integration.test_registry import serve_registry, token
from tests.integration.test_registry_support import (
    run,
    run_in_runc,
    skopeo,
    solve_lockfile,
    submit_packed,
    wait_image,
)

pytestmark = pytest.mark.slow

NUMPY_VERSION = "2.4.6"
IMPORT_BOTH = "import numpy, tomli; print(numpy.__version__)"


async def test_pulled_image_runs_numpy_and_pip_packages_under_runc(
    stack: Stack,
    settings: Settings,
    local_artifact_store,
    realistic_channel,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    wheels = [
        next(realistic_channel.wheels_dir.glob("tomli-*.whl")),
        make_wheel(
            tmp_path / "wheels",
            "hello_pip",
            "1.0",
            "def main():\n    print('hello from pip')\n",
            {"hello-pip": "hello_pip:main"},
        ),
    ]
    lockfile = await solve_lockfile(
        realistic_channel.url, ["python", "numpy", "pip"], tmp_path / "gw", wheels
    )
    async with serve_registry(stack, settings, local_artifact_store) as served:
        build_id = await submit_packed(
            stack.store,
            local_artifact_store,
            "default",
            "numpy",
            realistic_channel.url,
            ["numpy"],
            lockfile,
        )
        pushed = await wait_image(stack.store, build_id, timeout=180)
        await stack.projected()
        out = await run_in_runc(
            served.host,
            "default/numpy:latest",
            ["/bin/sh", "-c", f"python -c '{IMPORT_BOTH}' && hello-pip"],
            tmp_path,
        )
        assert out.split() == [NUMPY_VERSION, "hello", "from", "pip"]

        blobs = Blobs(local_artifact_store)
        manifest = json.loads(await blobs.get_bytes(pushed.manifest_digest))
        config = json.loads(await blobs.get_bytes(manifest["config"]["digest"]))
        labels = config["config"]["Labels"]
        assert labels["org.conda-store.pip-packages"] == "tomli==2.5.0 hello-pip==1.0"

        # pip's part is reproducible too: no .pyc mtimes, no staging path left in a script
        builder = served.registry.builder
        builder.layer_cache.root = builder.layer_cache.root / "fresh"
        events = await stack.store.read_stream(f"build-{build_id}")
        packed = next(e.payload() for e in events if e.type == "Packed")
        job = ImageJob.of_history([e.payload() for e in events], build_id, packed.sbom_key)  # type: ignore[union-attr]
        again = await builder.build_and_push(job, stack.store)
        assert again.digest == pushed.manifest_digest


async def test_on_demand_image_on_first_pull(
    stack: Stack,
    settings: Settings,
    local_artifact_store,
    realistic_channel,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from services.packer.worker import PackerWorker
    from services.solver.resolve import Resolver
    from services.solver.worker import SolverWorker

    pool = stack.store.pool
    await stack.run_workers(
        SolverWorker(Resolver.from_settings(settings, pool), local_artifact_store, pool),
        PackerWorker(settings, local_artifact_store, pool),
    )
    async with serve_registry(
        stack, settings, local_artifact_store, dynamic_image_channels=[realistic_channel.url]
    ) as served:
        creds = f"me:{token({'conda-store-dynamic/*': ['viewer']})}"
        out = await run_in_runc(
            served.host,
            "conda-store-dynamic/python/numpy.gt.1.0:latest",
            ["python", "-c", "import numpy; print(numpy.__version__)"],
            tmp_path,
            creds,
        )
        assert out.strip() == NUMPY_VERSION
        # the second pull reuses the build
        builds = await stack.store.pool.fetchval("SELECT count(*) FROM builds")
        again = await run(
            *skopeo(
                "inspect",
                "--tls-verify=false",
                "--creds",
                creds,
                f"docker://{served.host}/conda-store-dynamic/python/numpy.gt.1.0:latest",
            )
        )
        assert again.code == 0, again.err
        assert await stack.store.pool.fetchval("SELECT count(*) FROM builds") == builds
        labels = again.json()["Labels"]
        assert labels["org.conda-store.environment"] == "python-numpy.gt.1.0"

        failing = await run(
            *skopeo(
                "inspect",
                "--tls-verify=false",
                "--creds",
                creds,
                f"docker://{served.host}/conda-store-dynamic/no-such-package:latest",
            )
        )
        assert failing.code != 0
        assert "manifest unknown" in failing.err.lower()
