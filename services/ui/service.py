"""UI process: server-rendered pages that talk to the API gateway over HTTP."""

from __future__ import annotations

from fastapi import FastAPI

from shared.http import serve_app
from shared.service import ServiceContext


def create_app() -> FastAPI:
    app = FastAPI(title="conda-store ui")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "ui"}

    return app


async def main(ctx: ServiceContext) -> None:
    await serve_app(create_app(), ctx.settings.bind_host, ctx.settings.ui_port, ctx.stop)
