"""``/webhook/``: the admins' webhook page: every webhook with its delivery status, and a form
to register one (its secret is shown once, in the page, right after)."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from services.ui.deps import api_for, viewer_for
from services.ui.render import render

router = APIRouter()


@router.get("/webhook/", response_class=HTMLResponse)
async def webhook_page(request: Request) -> HTMLResponse:
    """The API refuses a non-admin (403), which the error page shows."""
    api = api_for(request)
    viewer, hooks = await asyncio.gather(viewer_for(request, api), api.data("/api/v1/webhook/"))
    return render(request, "webhooks.html", viewer=viewer, hooks=hooks)
