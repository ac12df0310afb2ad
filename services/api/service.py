"""API gateway process: serves the FastAPI app built by ``services.api.app``."""

from __future__ import annotations

from shared.http import serve_app
from shared.service import ServiceContext

from .app import create_app


async def main(ctx: ServiceContext) -> None:
    app = create_app(ctx.settings)
    settings = ctx.settings
    await serve_app(
        app,
        settings.bind_host,
        settings.api_port,
        ctx.stop,
        keep_alive_s=settings.http_keep_alive_s,
    )
