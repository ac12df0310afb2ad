"""``/namespace/``: list, create and (destructively) delete namespaces."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.ui import permissions as P
from services.ui.deps import api_for, viewer_for
from services.ui.render import render

router = APIRouter()


@router.get("/namespace/", response_class=HTMLResponse)
async def namespace_page(request: Request) -> HTMLResponse:
    api = api_for(request)
    viewer, listing, usage = await asyncio.gather(
        viewer_for(request, api),
        api.all_data("/api/v1/namespace/", sort_by="name"),
        api.data_or_none("/api/v1/usage/"),
    )
    rows = [
        {
            "name": ns["name"],
            "usage": (usage or {}).get(ns["name"], {}),
            "can_delete": viewer.can(P.NAMESPACE_DELETE, ns["name"]),
            "can_read_settings": viewer.can(P.SETTING_READ, ns["name"]),
        }
        for ns in listing
    ]
    return render(
        request,
        "namespace.html",
        viewer=viewer,
        rows=rows,
        can_create=viewer.can_anywhere(P.NAMESPACE_CREATE),
    )
