"""Forwarding of API paths, so the pages' scripts work when the ui is opened on its own port.

Behind the API gateway these paths never reach the ui (the gateway answers them); opened
directly, the browser still gets one origin for pages and API calls. Responses are streamed,
so a live build log arrives line by line.
"""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from shared.public_url import forwarded_headers, raw_route_path, scope_base, without_forwarded

router = APIRouter()

_HOP_HEADERS = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "content-length",
    "host",
}


async def forward(request: Request) -> StreamingResponse:
    """Send the request on to the API as the visitor made it (their base URL in
    ``X-Forwarded-*``, so redirects stay on this origin) and stream the answer back."""
    http: httpx.AsyncClient = request.app.state.http
    headers = without_forwarded(
        (k, v) for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS
    )
    headers += forwarded_headers(scope_base(request.scope)).items()
    upstream = http.build_request(
        request.method,
        raw_route_path(request.scope),
        params=request.url.query,
        headers=headers,
        content=await request.body(),
    )
    response = await http.send(upstream, stream=True, follow_redirects=False)
    out_headers = [
        (k, v) for k, v in response.headers.multi_items() if k.lower() not in _HOP_HEADERS
    ]
    result = StreamingResponse(
        response.aiter_raw(),
        status_code=response.status_code,
        background=BackgroundTask(response.aclose),
    )
    result.raw_headers = [
        (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in out_headers
    ]
    return result


_METHODS = ["GET", "POST", "PUT", "DELETE", "PATCH"]
router.add_api_route("/api/{path:path}", forward, methods=_METHODS, include_in_schema=False)
router.add_api_route("/storage/{path:path}", forward, methods=["GET"], include_in_schema=False)
router.add_api_route("/login/", forward, methods=["POST"], include_in_schema=False)
router.add_api_route("/logout/", forward, methods=["GET", "POST"], include_in_schema=False)
router.add_api_route("/docs", forward, methods=["GET"], include_in_schema=False)
router.add_api_route("/openapi.json", forward, methods=["GET"], include_in_schema=False)
