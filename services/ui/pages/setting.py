"""``/setting/[<ns>/[<env>/]]``: every runtime setting at a level, where its value comes from,
and a form to change it for those who may (conda-store's admin settings page)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel

from services.ui import permissions as P
from services.ui.client import segment
from services.ui.deps import api_for, viewer_for
from services.ui.render import render
from services.ui.validate import check_setting_values
from shared.runtime_settings import SettingLevel

router = APIRouter()

SOURCES = {
    "default": "conda-store's built-in default",
    "deployment": "set when this server was deployed (environment variable or settings file)",
    "global": "set on the global settings page",
    "namespace": "set for this namespace",
    "environment": "set for this environment",
}
"""Where a value can come from, least specific first, as the page explains it."""


async def _settings_page(
    request: Request, namespace: str | None, environment: str | None
) -> HTMLResponse:
    api = api_for(request)
    parts = [p for p in (namespace, environment) if p]
    path = "".join(f"{segment(p)}/" for p in parts)
    viewer, detail = await asyncio.gather(
        viewer_for(request, api), api.data(f"/api/v1/setting-detail/{path}")
    )
    arn = "/".join(parts)
    settings: list[dict[str, Any]] = detail["settings"]
    return render(
        request,
        "settings.html",
        viewer=viewer,
        level=detail["level"],
        namespace=namespace,
        environment=environment,
        scoped=[s for s in settings if s["scope"] != "global"],
        global_only=[s for s in settings if s["scope"] == "global"],
        can_update=viewer.can(P.SETTING_UPDATE, arn),
        api_path=f"/api/v1/setting/{path}",
        sources=SOURCES,
    )


@router.get("/setting/", response_class=HTMLResponse)
async def global_settings(request: Request) -> HTMLResponse:
    return await _settings_page(request, None, None)


@router.get("/setting/{namespace}/", response_class=HTMLResponse)
async def namespace_settings(request: Request, namespace: str) -> HTMLResponse:
    return await _settings_page(request, namespace, None)


@router.get("/setting/{namespace}/{environment}/", response_class=HTMLResponse)
async def environment_settings(request: Request, namespace: str, environment: str) -> HTMLResponse:
    return await _settings_page(request, namespace, environment)


class SettingValues(BaseModel):
    level: SettingLevel
    values: dict[str, Any]


@router.post("/setting/validate")
async def validate_settings(body: SettingValues) -> JSONResponse:
    """Each changed value's problem, placed on its field before anything is sent to the API."""
    return JSONResponse({"errors": check_setting_values(body.level, body.values)})
