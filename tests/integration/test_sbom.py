"""A real build's SBOM through the API: the real solver and packer build a conda + pip
environment on the realistic channel, ``GET /api/v1/build/{id}/sbom/`` serves CycloneDX 1.5
JSON that the schema accepts, and every package of the build's lockfile is in it with its
purl, sha256 and license."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from shared.events import BuildStarted, Packed, Solved
from shared.settings import Settings
from tests.channels.server import ServedChannel
from tests.fixtures.api import ApiHarness, api, packages, spec_event  # noqa: F401
from tests.integration.test_api_lifecycle import download, start_workers


def lockfile_purls(lockfile: dict[str, Any], platform: str) -> dict[str, dict[str, Any]]:
    """The purl each package of a conda-lock v1 file must have in the SBOM."""
    expected = {}
    for p in lockfile["package"]:
        if p["platform"] != platform:
            continue
        if p["manager"] == "pip":
            name = p["name"].lower().replace("_", "-").replace(".", "-")
            expected[f"pkg:pypi/{name}@{p['version']}"] = p
            continue
        channel, subdir, filename = p["url"].rsplit("/", 2)
        kind = "conda" if filename.endswith(".conda") else "tar.bz2"
        purl = (
            f"pkg:conda/{p['name']}@{p['version']}?build={p['build']}"
            f"&channel={channel}&subdir={subdir}&type={kind}"
        )
        expected[purl] = p
    return expected


@pytest.mark.slow
async def test_a_built_environment_has_a_valid_sbom_listing_its_lockfile(
    api: ApiHarness,  # noqa: F811
    settings: Settings,
    realistic_channel: ServedChannel,
) -> None:
    assert realistic_channel.wheels_dir is not None
    pip = {"pip_no_index": True, "pip_find_links": str(realistic_channel.wheels_dir)}
    await start_workers(api, api.state.settings.model_copy(update=pip))
    admin = api.admin()
    spec = {
        "name": "bom",
        "channels": [realistic_channel.url],
        "dependencies": ["python", "numpy", "requests", "pip", {"pip": ["requests-toolbelt"]}],
    }
    post = {"namespace": "sbom", "specification": yaml.safe_dump(spec)}
    r = await api.client.post("/api/v1/specification/", json=post, headers=admin)
    assert r.status_code == 200, r.text
    build_id = r.json()["data"]["build_id"]
    row = await api.stack.wait_build(build_id, timeout=300)
    assert row["status"] == "COMPLETED", row["status_info"]
    await api.projected()

    build = (await api.client.get(f"/api/v1/build/{build_id}/", headers=admin)).json()["data"]
    listed = {a["artifact_type"]: a["key"] for a in build["build_artifacts"]}
    assert listed["SBOM"] == f"builds/{build_id}/sbom.cdx.json"
    redirect = await api.client.get(f"/api/v1/build/{build_id}/sbom/", headers=admin)
    assert redirect.status_code == 307
    got = await download(api, f"/api/v1/build/{build_id}/sbom/", admin)
    assert got.status_code == 200
    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(got.text)
    assert error is None, error
    bom = json.loads(got.content)
    assert bom["specVersion"] == "1.5"
    assert bom["metadata"]["component"]["name"] == "sbom/bom"
    assert bom["metadata"]["component"]["version"] == row["build_key"]

    lock = yaml.safe_load((await download(api, f"/api/v1/build/{build_id}/lockfile/", admin)).text)
    platform = lock["metadata"]["platforms"][0]
    expected = lockfile_purls(lock, platform)
    assert any(p.startswith("pkg:pypi/requests-toolbelt@") for p in expected)
    assert len(expected) >= 9  # python, numpy, requests and its closure, pip, the pip package
    components = {c["purl"]: c for c in bom["components"]}
    assert set(components) == set(expected)
    for purl, package in expected.items():
        component = components[purl]
        assert component["version"] == package["version"]
        sha256 = {h["content"] for h in component["hashes"] if h["alg"] == "SHA-256"}
        assert sha256 == {package["hash"]["sha256"]}, purl
        assert component.get("licenses"), f"{purl} has no license"
    toolbelt = next(c for p, c in components.items() if p.startswith("pkg:pypi/requests-toolbelt"))
    license_ = toolbelt["licenses"][0]
    assert "Apache" in json.dumps(license_), license_  # read from the installed wheel's METADATA
    numpy = next(c for p, c in components.items() if p.startswith("pkg:conda/numpy@"))
    props = {p["name"]: p["value"] for p in numpy["properties"]}
    assert props["conda-store:channel"] == realistic_channel.url.rstrip("/")

    # another namespace may not read it; an unknown build is 404
    stranger = api.auth("stranger", {"stranger/*": ["admin"]})
    denied = await api.client.get(f"/api/v1/build/{build_id}/sbom/", headers=stranger)
    assert denied.status_code == 403
    missing = await api.client.get("/api/v1/build/999999/sbom/", headers=admin)
    assert missing.status_code == 404


async def test_a_build_packed_before_sboms_existed_has_none(api: ApiHarness) -> None:  # noqa: F811
    """A Packed event without ``sbom_key`` (older events) still parses: the build completes,
    lists no SBOM, and ``/sbom/`` says so with 404."""
    await api.append(
        "build-41",
        spec_event(41, "old", "env", ["numpy"]),
        BuildStarted(build_id=41),
        Solved(build_id=41, lockfile_key="k", yaml_key="k", packages=packages("numpy")),
        Packed(build_id=41, archive_key=None, logs_key="k", size=1),
    )
    await api.projected()
    admin = api.admin()
    build = (await api.client.get("/api/v1/build/41/", headers=admin)).json()["data"]
    assert build["status"] == "COMPLETED"
    assert "SBOM" not in {a["artifact_type"] for a in build["build_artifacts"]}
    r = await api.client.get("/api/v1/build/41/sbom/", headers=admin)
    assert r.status_code == 404
    assert r.json()["message"] == "Build 41 doesn't have an SBOM"
