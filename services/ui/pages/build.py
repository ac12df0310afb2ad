"""``/build/<id>/``: a build's metadata, packages, artifacts, usage hints and live log."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.ui import permissions as P
from services.ui.client import ApiClient
from services.ui.deps import api_for, viewer_for
from services.ui.pages.compare import completed_builds
from services.ui.render import build_key_of, render
from shared.wire import Int64

router = APIRouter()


@router.get("/build/{build_id}/", response_class=HTMLResponse)
async def build_page(request: Request, build_id: Int64, search: str = "") -> HTMLResponse:
    api = api_for(request)
    params = {"size": 100, "sort_by": "name"}
    if search:
        params["search"] = search
    viewer, build, packages, docker = await asyncio.gather(
        viewer_for(request, api),
        api.data(f"/api/v1/build/{build_id}/"),
        api.get(f"/api/v1/build/{build_id}/packages/", **params),
        api.text_or_none(f"/api/v1/build/{build_id}/docker/"),
    )
    namespace = build.get("namespace") or ""
    environment = build.get("environment") or ""
    if not (namespace and environment):
        env = await _find_environment(api, build)
        if env:
            namespace, environment = env["namespace"]["name"], env["name"]
    if not environment:
        environment = (build.get("specification") or {}).get("name") or ""
    arn = f"{namespace}/{environment}"
    artifacts = {a["artifact_type"]: a for a in build.get("build_artifacts") or []}
    choices = await completed_builds(api, namespace, environment) if namespace else []
    return render(
        request,
        "build.html",
        viewer=viewer,
        build=build,
        namespace=namespace,
        environment=environment,
        build_key=build_key_of(build, environment) or _key_from_image(docker),
        packages=packages.get("data") or [],
        package_count=packages.get("count", 0),
        search=search,
        artifacts=artifacts,
        docker=docker if docker and "error" not in docker[:20] else None,
        base_url=str(request.base_url).rstrip("/"),  # the visitor's (see shared.public_url)
        can_update=viewer.can(P.ENVIRONMENT_UPDATE, arn),
        can_delete_build=viewer.can(P.BUILD_DELETE, arn),
        can_cancel=viewer.can(P.BUILD_CANCEL, arn),
        compare_choices=choices,
        compare_from=previous_of(choices, build_id),
    )


def previous_of(choices: list[dict], build_id: int) -> int | None:
    """The build a build is compared with by default: the newest completed one before it."""
    return next((b["id"] for b in choices if b["id"] < build_id), None)


async def _find_environment(api: ApiClient, build: dict) -> dict | None:
    """Resolve the environment of a build from the builds list, which carries both ids."""
    spec_name = (build.get("specification") or {}).get("name")
    params: dict = {"size": 100}
    if spec_name:
        params["search"] = spec_name
    listing = await api.get("/api/v1/environment/", **params)
    for env in listing.get("data") or []:
        if env["id"] == build.get("environment_id"):
            return env
    return None


def _key_from_image(reference: str | None) -> str | None:
    """The image tag is the build key (``registry/ns/env:<build key>``)."""
    if not reference or ":" not in reference.rsplit("/", 1)[-1]:
        return None
    return reference.rsplit(":", 1)[1]
