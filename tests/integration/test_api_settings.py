"""Runtime settings beyond conda-store's routes: deploy-time defaults, where each value comes
from (``/api/v1/setting-detail/``), and ``build_artifacts`` deciding whether a build gets an
image. conda-store's own ``/api/v1/setting/`` answers keep their shape."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx

from services.api.app import create_app
from services.registry.repository import build_image
from shared.events import NO_IMAGE_REASON
from shared.runtime_settings import SETTING_KEYS
from tests.fixtures.api import ApiHarness, api  # noqa: F401

SPEC = "name: {name}\nchannels: [conda-forge]\ndependencies: [numpy]\n"


@asynccontextmanager
async def _gateway(
    api: ApiHarness,  # noqa: F811
    runtime_defaults: dict[str, Any],
) -> AsyncIterator[httpx.AsyncClient]:
    """Another gateway on the same database, deployed with these setting defaults."""
    app = create_app(
        api.state.settings,
        store=api.store,
        runtime_defaults=runtime_defaults,
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cs.test") as client:
            yield client


def _rows(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    assert body["status"] == "ok", body
    return {row["key"]: row for row in body["data"]["settings"]}


async def test_detail_names_the_source_of_every_value(api: ApiHarness) -> None:  # noqa: F811
    admin = api.admin()
    deployed = {"conda_command": "micromamba", "conda_default_channels": ["deployed"]}
    async with _gateway(api, deployed) as client:
        for path, body in (
            ("/api/v1/setting/", {"conda_default_channels": ["global"], "storage_threshold": 7}),
            ("/api/v1/setting/team/", {"conda_included_packages": ["ipykernel"]}),
            ("/api/v1/setting/team/env/", {"build_artifacts": ["LOCKFILE", "YAML"]}),
        ):
            put = await client.put(path, json=body, headers=admin)
            assert put.status_code == 200, put.text

        rows = _rows((await client.get("/api/v1/setting-detail/team/env/", headers=admin)).json())
        assert list(rows) == list(SETTING_KEYS)
        sources = {k: r["source"] for k, r in rows.items()}
        assert sources["conda_command"] == "deployment"
        assert sources["conda_default_channels"] == "global"
        assert sources["storage_threshold"] == "global"
        assert sources["conda_included_packages"] == "namespace"
        assert sources["build_artifacts"] == "environment"
        assert sources["conda_allowed_channels"] == "default"
        assert rows["conda_command"]["value"] == "micromamba"
        assert rows["build_artifacts"]["value"] == ["LOCKFILE", "YAML"]
        # what a form needs: meaning, type, scope and whether this level may set it
        assert rows["conda_included_packages"]["description"]
        assert rows["build_artifacts"]["choices"][:2] == ["DIRECTORY", "LOCKFILE"]
        assert (rows["default_uid"]["type"], rows["default_uid"]["nullable"]) == ("integer", True)
        assert rows["conda_channel_alias"]["type"] == "string"
        assert rows["storage_threshold"]["scope"] == "global"
        assert not rows["storage_threshold"]["settable"]
        assert rows["conda_default_channels"]["settable"]
        top = _rows((await client.get("/api/v1/setting-detail/", headers=admin)).json())
        assert top["storage_threshold"]["settable"]
        assert top["conda_included_packages"]["source"] == "default"

        # conda-store's answer is unchanged: the merged values, flat, deployment included
        merged = (await client.get("/api/v1/setting/team/env/", headers=admin)).json()
        assert set(merged) == {"status", "data", "message"}
        assert list(merged["data"]) == list(SETTING_KEYS)
        assert merged["data"]["conda_command"] == "micromamba"
        assert merged["data"]["build_artifacts"] == ["LOCKFILE", "YAML"]


async def test_detail_needs_setting_read(api: ApiHarness) -> None:  # noqa: F811
    anonymous = await api.client.get("/api/v1/setting-detail/")
    assert anonymous.status_code == 403
    editor = api.auth("team", {"team/*": ["editor"]})
    assert (await api.client.get("/api/v1/setting-detail/team/", headers=editor)).status_code == 200
    assert (await api.client.get("/api/v1/setting-detail/", headers=editor)).status_code == 403
    viewer = api.auth("team", {"team/*": ["viewer"]})
    assert (await api.client.get("/api/v1/setting-detail/team/", headers=viewer)).status_code == 403


async def test_deployment_defaults_reach_builds_and_the_default_namespace(
    api: ApiHarness,  # noqa: F811
) -> None:
    deployed = {
        "default_namespace": "shared",
        "conda_included_packages": ["ipykernel"],
    }
    async with _gateway(api, deployed) as client:
        permission = (await client.get("/api/v1/permission/")).json()["data"]
        assert permission["primary_namespace"] == "shared"
        await api.projected()
        made = await client.get("/api/v1/namespace/shared/", headers=api.admin())
        assert made.status_code == 200  # made at start, as conda-store makes "default"
        response = await client.post(
            "/api/v1/specification/",
            json={"namespace": "team", "specification": SPEC.format(name="deployed")},
            headers=api.admin(),
        )
        assert response.status_code == 200, response.text
        build_id = response.json()["data"]["build_id"]
        [submitted] = await api.store.read_stream(f"build-{build_id}")
        assert "ipykernel" in submitted.data["conda_dependencies"]


async def test_build_artifacts_without_the_image_kind_make_no_image(
    api: ApiHarness,  # noqa: F811
) -> None:
    admin = api.admin()
    put = await api.client.put(
        "/api/v1/setting/team/plain/",
        json={"build_artifacts": ["LOCKFILE", "YAML", "CONDA_PACK"]},
        headers=admin,
    )
    assert put.status_code == 200, put.text
    ids = {}
    for name in ("plain", "imaged"):
        response = await api.client.post(
            "/api/v1/specification/",
            json={"namespace": "team", "specification": SPEC.format(name=name)},
            headers=admin,
        )
        assert response.status_code == 200, response.text
        ids[name] = response.json()["data"]["build_id"]

    plain = (await api.client.get(f"/api/v1/build/{ids['plain']}/", headers=admin)).json()
    assert plain["data"]["image"] == {
        "status": "SKIPPED",
        "reason": NO_IMAGE_REASON,
        "digest": None,
    }
    imaged = (await api.client.get(f"/api/v1/build/{ids['imaged']}/", headers=admin)).json()
    assert imaged["data"]["image"] is None  # still queued: made once the build completes
    [event] = await api.store.read_stream(f"build-{ids['plain']}")
    assert event.data["make_image"] is False

    # the environment list carries its current build's image (an extension)
    listing = (await api.client.get("/api/v1/environment/?namespace=team", headers=admin)).json()
    images = {env["name"]: env["image"] for env in listing["data"]}
    assert images["plain"]["status"] == "SKIPPED" and images["imaged"] is None
    one = (await api.client.get("/api/v1/environment/team/plain/", headers=admin)).json()
    assert one["data"]["image"]["status"] == "SKIPPED"

    # a pull of it is refused at once with the reason, instead of waiting for an image
    image = await build_image(api.store, ids["plain"])
    assert (image.status, image.reason) == ("failed", NO_IMAGE_REASON)
    assert (await build_image(api.store, ids["imaged"])).status == "pending"
