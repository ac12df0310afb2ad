"""UI process: server-rendered pages that talk to the API gateway over HTTP."""

from __future__ import annotations

from shared.http import serve_app
from shared.service import ServiceContext

from .app import create_app

__all__ = ["create_app", "main"]


async def main(ctx: ServiceContext) -> None:
    settings = ctx.settings
    await serve_app(
        create_app(settings),
        settings.bind_host,
        settings.ui_port,
        ctx.stop,
        keep_alive_s=settings.http_keep_alive_s,
    )
