"""``/login/``: a form whose script posts JSON to the API's ``POST /login/``. Logging out is
the API's ``/logout/`` (the "Log out" link reaches it through the gateway or the passthrough)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.ui.deps import api_for, viewer_for
from services.ui.render import render

router = APIRouter()


def safe_next(request: Request, target: str | None) -> str:
    """Only same-site paths are followed after login, never another host; the default is
    the home page under the URL prefix."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return f"{request.scope['root_path']}/"


@router.get("/login/", response_class=HTMLResponse)
async def login_page(request: Request, next: str | None = None) -> HTMLResponse:
    viewer = await viewer_for(request, api_for(request))
    return render(request, "login.html", viewer=viewer, next=safe_next(request, next))
