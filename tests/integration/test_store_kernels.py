"""Environments in the store run as Jupyter kernels, as a JupyterHub that mounts the store runs
them: from ``<store>/<namespace>/envs/<name>``, with ``conda_included_packages: [ipykernel]``
making every environment of the namespace a kernel. A rollback changes what a new kernel runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from services.packer.store import link_of, link_target
from tests.fixtures.api import ApiHarness, api  # noqa: F401
from tests.harness.kernels import run_in_kernel
from tests.integration.test_store_directory import build, directory_of, eventually, start_workers

WHICH_BUILD = (
    "import json, sys, numpy\n"
    "print(json.load(open(sys.prefix + '/conda-meta/conda-store-build.json'))['build_id'])\n"
    "print(numpy.__version__)"
)


@pytest.mark.slow
async def test_environment_is_a_kernel_from_its_envs_link_and_follows_rollback(
    api: ApiHarness,  # noqa: F811
    jupyter_channel: Any,
    tmp_path: Path,
) -> None:
    await start_workers(api)
    included = {"conda_included_packages": ["ipykernel"]}
    r = await api.client.put("/api/v1/setting/hub/", json=included, headers=api.admin())
    assert r.status_code == 200, r.text

    spec = f"name: science\nchannels:\n  - {jupyter_channel.url}\ndependencies:\n  - numpy\n"
    first = await build(api, "hub", spec)
    assert first["status"] == "COMPLETED", first["status_info"]
    second = await build(api, "hub", spec + "  - six\n")
    assert second["status"] == "COMPLETED", second["status_info"]
    r = await api.client.get(f"/api/v1/build/{first['id']}/packages/?size=200", headers=api.admin())
    assert "ipykernel" in {p["name"] for p in r.json()["data"]}  # added by the setting

    link = link_of(api.state.settings.store_root, "hub", "science")
    await eventually(lambda: link_target(link) == directory_of(second))
    out = await run_in_kernel(link, WHICH_BUILD, tmp_path / "kernel-1")
    assert out.split() == [str(second["id"]), "2.4.6"]

    r = await api.client.put(
        "/api/v1/environment/hub/science/", json={"build_id": first["id"]}, headers=api.admin()
    )
    assert r.status_code == 200, r.text
    await eventually(lambda: link_target(link) == directory_of(first))
    out = await run_in_kernel(link, WHICH_BUILD, tmp_path / "kernel-2")
    assert out.split() == [str(first["id"]), "2.4.6"]
    marker = json.loads((directory_of(first) / "conda-meta/conda-store-build.json").read_text())
    assert marker == {"build_id": first["id"], "namespace": "hub", "environment": "science"}
