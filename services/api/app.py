"""The API gateway application (conda-store's /api/v1 lands here, route module by module)."""

from __future__ import annotations

from fastapi import FastAPI

from shared.settings import Settings

VERSION = "2025.2.2"


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(title="conda-store", version=VERSION)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "api"}

    @app.get("/api/v1/")
    async def api_status() -> dict[str, object]:
        return {"status": "ok", "data": {"version": VERSION}, "message": None}

    return app
