"""The gateway's fallback: any path no API route answers is a ui page, fetched from the ui service.

Include this router **last** (``app.include_router(ui_proxy.router)`` after every other one),
so it only sees what the API does not serve. Paths under ``/api/`` are never forwarded: an
unknown API path stays conda-store's 404. The ui service's address is ``settings.ui_url``, else
``http://127.0.0.1:<ui_port>``. Requests and responses are streamed (the ui serves static files
and HTML; nothing here buffers them). The ui gets the path below the URL prefix and the
visitor's base in ``X-Forwarded-*``, so its links are the visitor's.
"""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.background import BackgroundTask
from starlette.routing import Match

from shared.public_url import forwarded_headers, raw_route_path, scope_base, without_forwarded

from ..deps import api_state
from ..envelopes import error_response
from ..state import ApiState

router = APIRouter()

METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
FORWARDED = frozenset({"GET", "HEAD", "POST"})
"""What the ui's pages take; the ui has no other method."""
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "upgrade", "host", "content-length"}


def ui_base_url(state: ApiState) -> str:
    settings = state.settings
    if settings.ui_url:
        return settings.ui_url.rstrip("/")
    host = settings.bind_host if settings.bind_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{host}:{settings.ui_port}"


def _client(request: Request, base_url: str) -> httpx.AsyncClient:
    """One pooled client per app, made on first use (keep-alive to the ui matters for speed)."""
    client = getattr(request.app.state, "ui_http", None)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(60.0, connect=5.0))
        request.app.state.ui_http = client
    return client


def _matches(request: Request, path: str) -> Match:
    """How well the app's own routes (all but this catch-all) match ``path``: FULL, PARTIAL
    (the path exists, not with this method) or NONE."""
    scope = {**request.scope, "path": path}
    best = Match.NONE
    for route in request.app.router.routes:
        if (
            getattr(route, "name", None) == "ui_proxy"
            or getattr(route, "original_router", None) is router
        ):
            continue  # the catch-all itself (FastAPI wraps included routers)
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return match
        best = max(best, match, key=lambda m: m.value)
    return best


def slash_redirect(request: Request) -> Response | None:
    """FastAPI's redirect_slashes, which a catch-all route would otherwise shadow: if the path
    with its trailing slash toggled is a route (for any method, as Starlette does), 307 there
    with the query string kept."""
    path = request.url.path
    other = path[:-1] if path.endswith("/") else path + "/"
    if other in ("", "/") or _matches(request, other) == Match.NONE:
        return None
    return RedirectResponse(str(request.url.replace(path=other)), 307)


@router.api_route("/{path:path}", methods=METHODS, include_in_schema=False, name="ui_proxy")
async def ui_proxy(path: str, request: Request, state: ApiState = Depends(api_state)) -> Response:
    """Every method lands here when no route takes it, so that the slash redirect runs for
    PUT and DELETE too; a route that exists for other methods answers 405, as it would
    without the catch-all."""
    if _matches(request, request.url.path) == Match.PARTIAL:
        return error_response(405, "Method Not Allowed")
    redirect = slash_redirect(request)
    if redirect is not None:
        return redirect
    if path == "api" or path.startswith("api/") or not state.settings.enable_ui:
        return error_response(404, "Not Found")
    if request.method not in FORWARDED:
        return error_response(405, "Method Not Allowed")
    client = _client(request, ui_base_url(state))
    headers = without_forwarded((k, v) for k, v in request.headers.items() if k.lower() not in _HOP)
    headers += forwarded_headers(scope_base(request.scope)).items()
    upstream = client.build_request(
        request.method,
        raw_route_path(request.scope),
        params=request.url.query,
        headers=headers,
        content=request.stream() if request.method == "POST" else None,
    )
    try:
        response = await client.send(upstream, stream=True, follow_redirects=False)
    except httpx.HTTPError:
        return error_response(502, "the ui service is not reachable")
    result = StreamingResponse(
        response.aiter_raw(),
        status_code=response.status_code,
        background=BackgroundTask(response.aclose),
    )
    result.raw_headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1"))
        for k, v in response.headers.multi_items()
        if k.lower() not in _HOP
    ]
    return result
