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
from shared.wire import Int64

router = APIRouter()

PAGE_SIZE = 100
UNFINISHED = ("QUEUED", "BUILDING", "FAILED", "CANCELED")
MAX_STATUS_PAGES = 10


async def _status_lists(api: ApiClient, search: str) -> tuple[dict[int, str], bool]:
    """Current-build status per environment id for every status but COMPLETED.

    The environment list filters by the status of the current build; builds that are not
    completed are few, so these lists are fetched whole, and any other environment with a
    current build is COMPLETED by elimination. Returns (statuses, whether the lists are whole).
    """
    params: dict[str, Any] = {"size": PAGE_SIZE}
    if search:
        params["search"] = search

    async def whole(status: str) -> tuple[list[dict[str, Any]], bool]:
        first = await api.get("/api/v1/environment/", status=status, **params)
        pages = -(-int(first.get("count", 0)) // PAGE_SIZE)
        rest = await asyncio.gather(
            *(
                api.get("/api/v1/environment/", status=status, page=p, **params)
                for p in range(2, min(pages, MAX_STATUS_PAGES) + 1)
            )
        )
        items = list(first.get("data") or [])
        for answer in rest:
            items += answer.get("data") or []
        return items, pages <= MAX_STATUS_PAGES

    answers = await asyncio.gather(*(whole(s) for s in UNFINISHED), return_exceptions=True)
    status_of: dict[int, str] = {}
    complete = True
    for status, answer in zip(UNFINISHED, answers, strict=True):
        if isinstance(answer, BaseException):
            complete = False
            continue
        items, whole_list = answer
        complete = complete and whole_list
        for env in items:
            status_of[env["id"]] = status
    return status_of, complete


async def _fill_statuses(
    api: ApiClient, envs: list[dict[str, Any]], known: dict[int, str], complete: bool
) -> None:
    """COMPLETED by elimination when the lists were whole; else look the builds up."""
    missing = [e for e in envs if e.get("current_build_id") and e["id"] not in known]
    if complete:
        known.update((e["id"], "COMPLETED") for e in missing)
        return
    builds = await asyncio.gather(
        *(api.data_or_none(f"/api/v1/build/{e['current_build_id']}/") for e in missing)
    )
    for env, build in zip(missing, builds, strict=True):
        if build:
            known[env["id"]] = build["status"]


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, search: str = "", page: Int64 = 1) -> HTMLResponse:
    api = api_for(request)
    params: dict[str, Any] = {"size": PAGE_SIZE, "page": max(page, 1)}
    if search:
        params["search"] = search
    viewer, listing, (status_of, complete) = await asyncio.gather(
        viewer_for(request, api),
        api.get("/api/v1/environment/", **params),
        _status_lists(api, search),
    )
    envs = listing.get("data") or []
    await _fill_statuses(api, envs, status_of, complete)
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
