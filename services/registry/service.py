"""Registry process: the OCI distribution API (pull side) on its own port."""

from __future__ import annotations

from fastapi import FastAPI

from shared.http import serve_app
from shared.service import ServiceContext


def create_app() -> FastAPI:
    app = FastAPI(title="conda-store registry")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "registry"}

    return app


async def main(ctx: ServiceContext) -> None:
    await serve_app(create_app(), ctx.settings.bind_host, ctx.settings.registry_port, ctx.stop)
