"""The ui application: server-rendered pages over the API gateway, plus static assets.

The ui holds no state and touches no database: every page is a handful of concurrent API
calls made with the visitor's credentials, rendered by a precompiled template.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from services.ui.client import ApiError
from services.ui.pages import (
    build,
    compare,
    create,
    environment,
    home,
    login,
    namespace,
    setting,
    user,
    webhook,
)
from services.ui.passthrough import router as passthrough_router
from services.ui.render import render
from services.ui.timing import ServerTiming
from shared.http_edge import EdgeGuard
from shared.public_url import PublicUrlMiddleware
from shared.settings import Settings

STATIC = Path(__file__).parent / "static"


def api_base_url(settings: Settings) -> str:
    """The API gateway's address: ``api_url`` if set, else the local API port."""
    if settings.api_url:
        return settings.api_url.rstrip("/")
    host = settings.bind_host if settings.bind_host not in ("0.0.0.0", "::", "") else "127.0.0.1"
    return f"http://{host}:{settings.api_port}"


def create_app(
    settings: Settings | None = None, transport: httpx.AsyncBaseTransport | None = None
) -> FastAPI:
    """Build the ui app; ``transport`` lets benchmarks talk to an in-process API."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient(
            base_url=api_base_url(settings),
            transport=transport,
            timeout=httpx.Timeout(30.0, connect=5.0),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        ) as http:
            app.state.http = http
            yield

    app = FastAPI(
        title="conda-store ui", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.settings = settings

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "ui"}

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon(request: Request) -> Response:
        return RedirectResponse(f"{request.scope['root_path']}/static/favicon.svg")

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> HTMLResponse:
        # the API's refusals (4xx) are the visitor's; its failures are a bad gateway
        status = exc.status_code if 400 <= exc.status_code < 500 else 502
        return render(request, "error.html", status_code=status, error=exc)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    for module in (
        home,
        login,
        user,
        create,
        environment,
        build,
        compare,
        namespace,
        setting,
        webhook,
    ):
        app.include_router(module.router)
    app.include_router(passthrough_router)
    app.add_middleware(ServerTiming)
    app.add_middleware(
        PublicUrlMiddleware, url_prefix=settings.url_prefix, external_url=settings.external_url
    )
    # outermost: refuses on the request as sent, before the URL prefix is rewritten
    app.add_middleware(EdgeGuard, max_body_bytes=settings.max_body_bytes)
    return app
