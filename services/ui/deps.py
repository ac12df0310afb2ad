"""Per-request helpers every page uses: the user's API client and who the user is."""

from __future__ import annotations

from fastapi import Request

from services.ui.client import ApiClient, credentials_of
from services.ui.permissions import Viewer
from shared.public_url import forwarded_headers, scope_base


def api_for(request: Request) -> ApiClient:
    """An API client speaking with this request's credentials and the visitor's base URL
    (so what the API builds, e.g. an image reference, names the host the visitor used)."""
    headers = credentials_of(request) | forwarded_headers(scope_base(request.scope))
    return ApiClient(request.app.state.http, headers)


async def viewer_for(request: Request, api: ApiClient) -> Viewer:
    """``GET /api/v1/permission/``, remembered on the request for the page header."""
    viewer = Viewer.from_api(await api.data_or_none("/api/v1/permission/"))
    request.state.viewer = viewer
    return viewer
