"""``/environment/<ns>/<name>/``: the current spec, disk use, and every build with its actions."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.ui import permissions as P
from services.ui.client import segment
from services.ui.deps import api_for, viewer_for
from services.ui.guided import spec_to_yaml
from services.ui.pages.build import previous_of
from services.ui.render import render

router = APIRouter()


@router.get("/environment/{namespace}/{name}/", response_class=HTMLResponse)
async def environment_page(request: Request, namespace: str, name: str) -> HTMLResponse:
    api = api_for(request)
    viewer, env, listing = await asyncio.gather(
        viewer_for(request, api),
        api.data(f"/api/v1/environment/{segment(namespace)}/{segment(name)}/"),
        api.get(
            "/api/v1/build/",
            namespace=namespace,
            name=name,
            sort_by="id",
            order="desc",
            size=100,
        ),
    )
    builds = [b for b in listing.get("data") or [] if b.get("environment_id") == env["id"]]
    choices = [b for b in builds if b["status"] == "COMPLETED" and not b.get("deleted_on")]
    current, docker = None, None
    if env.get("current_build_id"):
        current = await api.data_or_none(f"/api/v1/build/{env['current_build_id']}/")
    if current and (current.get("image") or {}).get("status") == "PUSHED":
        docker = await api.text_or_none(f"/api/v1/build/{current['id']}/docker/")
    updates = await api.data_or_none(
        f"/api/v1/environment/{segment(namespace)}/{segment(name)}/updates/"
    )
    spec = ((current or {}).get("specification") or {}).get("spec")
    arn = f"{namespace}/{name}"
    return render(
        request,
        "environment.html",
        viewer=viewer,
        env=env,
        builds=builds,
        current=current,
        docker=docker,
        spec_yaml=spec_to_yaml(spec) if spec else None,
        disk=sum(b.get("size") or 0 for b in builds if not b.get("deleted_on")),
        running=any(b["status"] in ("QUEUED", "BUILDING") for b in builds),
        can_update=viewer.can(P.ENVIRONMENT_UPDATE, arn),
        can_create=viewer.can(P.ENVIRONMENT_CREATE, arn),
        can_delete=viewer.can(P.ENVIRONMENT_DELETE, arn),
        can_delete_build=viewer.can(P.BUILD_DELETE, arn),
        can_cancel=viewer.can(P.BUILD_CANCEL, arn),
        can_read_settings=viewer.can(P.SETTING_READ, arn),
        updates=updates if current and current.get("status") == "COMPLETED" else None,
        compare_choices=choices,
        compare_to=env.get("current_build_id"),
        compare_from=previous_of(choices, env["current_build_id"] or 0),
    )
