"""Query parameters shared by the environment and build lists (enums give conda-store's 422)."""

from __future__ import annotations

import enum

from fastapi import Query, Request

from shared.runtime_settings import BuildArtifactType as ArtifactType

from ..queries.environments import EnvFilters


class BuildStatus(enum.StrEnum):
    QUEUED = "QUEUED"
    BUILDING = "BUILDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


class Order(enum.StrEnum):
    asc = "asc"
    desc = "desc"


async def env_filters(
    request: Request,
    search: str | None = None,
    namespace: str | None = None,
    name: str | None = None,
    status: BuildStatus | None = None,
    artifact: ArtifactType | None = None,
    packages: list[str] = Query([]),
    jwt: str | None = None,
) -> EnvFilters:
    extra = None
    if jwt is not None:
        from ..deps import Caller, bindings_for

        state = request.app.state.api
        token = state.codec.authenticate(jwt)
        extra = Caller(token, await bindings_for(state, token)).patterns()
    return EnvFilters(
        search=search,
        namespace=namespace,
        name=name,
        status=status.value if status else None,
        artifact=artifact.value if artifact else None,
        packages=packages,
        extra_patterns=extra,
    )
