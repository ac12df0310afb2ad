"""``/user/``: who you are, what you may do where, your usage, and API tokens."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from services.ui.deps import api_for, viewer_for
from services.ui.render import render

router = APIRouter()


@router.get("/user/", response_class=HTMLResponse)
async def user_page(request: Request) -> Response:
    api = api_for(request)
    viewer, usage = await asyncio.gather(
        viewer_for(request, api), api.data_or_none("/api/v1/usage/")
    )
    if not viewer.authenticated:
        root = request.scope["root_path"]
        return RedirectResponse(f"{root}/login/?next={root}/user/", status_code=303)
    rows = []
    for key, permissions in sorted(viewer.entity_permissions.items()):
        namespace, _, name = key.partition("/")
        rows.append(
            {
                "namespace": namespace,
                "name": name,
                "roles": viewer.entity_roles.get(key, []),
                "permissions": permissions,
            }
        )
    return render(request, "user.html", viewer=viewer, rows=rows, usage=usage or {})
