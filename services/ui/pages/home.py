"""``/``: every visible environment grouped by namespace, with its current build's state."""

from __future__ import annotations

import asyncio
from itertools import groupby
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.ui.client import ApiClient
from services.ui.deps import api_for, viewer_for
from services.ui.render import render

router = APIRouter()

PAGE_SIZE = 100
STATUSES = ("QUEUED", "BUILDING", "FAILED", "CANCELED", "COMPLETED")


async def _status_lists(api: ApiClient, search: str) -> dict[int, str]:
    """Current-build status per environment id, from the list filtered by each status.

    Five concurrent list calls instead of one build lookup per environment; a status list
    longer than a page is completed below by direct lookups.
    """
    params: dict[str, Any] = {"size": PAGE_SIZE}
    if search:
        params["search"] = search
    answers = await asyncio.gather(
        *(api.get("/api/v1/environment/", status=s, **params) for s in STATUSES),
        return_exceptions=True,
    )
    status_of: dict[int, str] = {}
    for status, answer in zip(STATUSES, answers, strict=True):
        if isinstance(answer, BaseException):
            continue
        for env in answer.get("data") or []:
            status_of[env["id"]] = status
    return status_of


async def _missing_statuses(
    api: ApiClient, envs: list[dict[str, Any]], known: dict[int, str]
) -> None:
    """Look up the current builds the status lists did not cover."""
    missing = [e for e in envs if e.get("current_build_id") and e["id"] not in known]
    builds = await asyncio.gather(
        *(api.data_or_none(f"/api/v1/build/{e['current_build_id']}/") for e in missing)
    )
    for env, build in zip(missing, builds, strict=True):
        if build:
            known[env["id"]] = build["status"]


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, search: str = "", page: int = 1) -> HTMLResponse:
    api = api_for(request)
    params: dict[str, Any] = {"size": PAGE_SIZE, "page": max(page, 1)}
    if search:
        params["search"] = search
    viewer, listing, status_of = await asyncio.gather(
        viewer_for(request, api),
        api.get("/api/v1/environment/", **params),
        _status_lists(api, search),
    )
    envs = listing.get("data") or []
    await _missing_statuses(api, envs, status_of)
    for env in envs:
        env["status"] = status_of.get(env["id"]) if env.get("current_build_id") else None
    groups = [
        (namespace, list(items))
        for namespace, items in groupby(
            sorted(envs, key=lambda e: e["namespace"]["name"]), key=lambda e: e["namespace"]["name"]
        )
    ]
    count = listing.get("count", len(envs))
    pages = max(1, -(-count // PAGE_SIZE))
    return render(
        request,
        "home.html",
        viewer=viewer,
        groups=groups,
        search=search,
        count=count,
        page=max(page, 1),
        pages=pages,
    )
