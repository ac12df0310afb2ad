"""``/compare/?from=<a>&to=<b>``: what changed between two builds (the API's diff, shown);
without ``from``, ``to`` is compared with the previous completed build of its environment."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from services.ui.client import ApiClient
from services.ui.deps import api_for, viewer_for
from services.ui.render import render
from shared.wire import Int64

router = APIRouter()


@router.get("/compare/", response_class=HTMLResponse)
async def compare_page(
    request: Request, to: Int64, from_: Int64 | None = Query(default=None, alias="from")
) -> HTMLResponse:
    api = api_for(request)
    path = f"/api/v1/build/{from_}/diff/{to}/" if from_ is not None else f"/api/v1/build/{to}/diff/"
    viewer, diff = await asyncio.gather(viewer_for(request, api), api.data(path))
    target = diff["to"]
    return render(
        request,
        "compare.html",
        viewer=viewer,
        diff=diff,
        choices=await completed_builds(api, target["namespace"], target["environment"]),
    )


async def completed_builds(api: ApiClient, namespace: str, environment: str) -> list[dict]:
    """The environment's completed builds, newest first: what a compare form offers."""
    listing = await api.get(
        "/api/v1/build/",
        namespace=namespace,
        name=environment,
        status="COMPLETED",
        sort_by="id",
        order="desc",
        size=100,
    )
    return [b for b in listing.get("data") or [] if not b.get("deleted_on")]
