"""UI process: server-rendered pages that talk to the API gateway over HTTP."""

from __future__ import annotations

from shared.http import serve_app
from shared.service import ServiceContext

from .app import create_app

__all__ = ["create_app", "main"]


async def main(ctx: ServiceContext) -> None:
    await serve_app(
        create_app(ctx.settings), ctx.settings.bind_host, ctx.settings.ui_port, ctx.stop
    )
