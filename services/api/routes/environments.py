"""/api/v1/environment/… and /api/v2/environment/."""

from __future__ import annotations

from typing import Any

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field

from shared.auth import Permission
from shared.events import (
    CurrentBuildSet,
    EnvironmentDeleted,
    EnvironmentDescriptionSet,
    stream_of_build,
    stream_of_environment,
)
from shared.spec import MAX_DESCRIPTION_CHARS
from shared.wire import Int64

from ..cleanup import delete_builds_files
from ..commands import emit
from ..decisions import check_can_become_current
from ..deps import Caller, api_state, get_caller
from ..envelopes import DEPRECATED_HEADERS, APIError, FastJSON, Paging, ack, ok, paging
from ..queries import builds, environments
from ..queries.environments import EnvFilters
from ..state import ApiState
from .artifacts import lockfile_response
from .filters import Order, env_filters

P = Permission
router = APIRouter()
V2_SORT = ["namespace", "name"]


@router.get("/api/v1/environment/")
async def list_environments(
    filters: EnvFilters = Depends(env_filters),
    page: Paging = Depends(paging),
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    data, count = await environments.list_page(state.pool, caller.patterns(), filters, page)
    return page.envelope(data, count, headers=DEPRECATED_HEADERS)


@router.get("/api/v2/environment/")
async def list_environments_v2(
    filters: EnvFilters = Depends(env_filters),
    limit: Int64 | None = None,
    order: Order = Order.asc,
    sort_by: str | None = None,
    cursor: str | None = None,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    keys = [k.strip() for k in sort_by.split(",")] if sort_by else []
    bad = [k for k in keys if k not in V2_SORT]
    if bad:
        raise APIError(400, f"Cannot sort results by {bad}. Valid sort_by values are {V2_SORT}")
    try:
        position = environments.decode_cursor(cursor)
    except ValueError as exc:
        raise APIError(400, "Invalid cursor") from exc
    size = limit if limit is not None and limit > 0 else state.settings.max_page_size
    data, count, next_cursor = await environments.cursor_page(
        state.pool, caller.patterns(), filters, keys, order == Order.desc, size, position
    )
    body = {"data": data, "status": "ok", "message": None, "cursor": next_cursor, "count": count}
    return FastJSON(body, headers=DEPRECATED_HEADERS)


async def environment_or_404(state: ApiState, namespace: str, name: str) -> Any:
    row = await environments.get(state.pool, namespace, name)
    if row is None:
        raise APIError(404, "environment does not exist")
    return row


@router.get("/api/v1/environment/{namespace}/{name}/")
async def get_environment(
    namespace: str,
    name: str,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    caller.require(f"{namespace}/{name}", P.ENVIRONMENT_READ)
    row = await environment_or_404(state, namespace, name)
    return ok(environments.environment_shape(row))


async def _live_environment(state: ApiState, namespace: str, name: str) -> asyncpg.Record:
    """The environment, or conda-store's 400 for one that is missing or deleted."""
    env = await environments.get(state.pool, namespace, name)
    if env is None or env["deleted_on"] is not None:
        raise APIError(400, f"environment namespace={namespace} name={name} does not exist")
    return env


class EnvironmentUpdate(BaseModel):
    build_id: Int64 | None = None
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_CHARS)


@router.put("/api/v1/environment/{namespace}/{name}/")
async def update_environment(
    namespace: str,
    name: str,
    body: EnvironmentUpdate,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    caller.require(f"{namespace}/{name}", P.ENVIRONMENT_UPDATE)
    await _live_environment(state, namespace, name)
    events: list[Any] = []
    if body.build_id is not None:
        # the build's own stream decides its status; a deletion of its environment or
        # namespace before this one is recorded elsewhere, and projected before it answered
        history = await state.store.read_stream(stream_of_build(body.build_id))
        check_can_become_current(body.build_id, (namespace, name), history)
        row = await builds.get(state.pool, body.build_id)
        if row is not None and row["deleted_on"] is not None:
            raise APIError(400, "cannot update environment to build id since not completed")
        events.append(
            CurrentBuildSet(namespace=namespace, environment=name, build_id=body.build_id)
        )
    if body.description is not None:
        events.append(
            EnvironmentDescriptionSet(
                namespace=namespace, environment=name, description=body.description
            )
        )
    if events:
        await emit(state, stream_of_environment(namespace, name), *events, actor=caller.actor)
    return ack()


@router.delete("/api/v1/environment/{namespace}/{name}/")
async def delete_environment(
    namespace: str,
    name: str,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    caller.require(f"{namespace}/{name}", P.ENVIRONMENT_DELETE)
    env = await _live_environment(state, namespace, name)
    build_ids = await builds.ids_of_environment(state.pool, env["id"])
    await emit(
        state,
        stream_of_environment(namespace, name),
        EnvironmentDeleted(namespace=namespace, environment=name),
        actor=caller.actor,
    )
    await delete_builds_files(state, build_ids)
    return ack()


@router.get("/api/v1/environment/{namespace}/{name}/lockfile/")
@router.get("/api/v1/environment/{namespace}/{name}/conda-lock.yaml")
@router.get("/api/v1/environment/{namespace}/{name}/conda-lock.yml")
async def environment_lockfile(
    namespace: str,
    name: str,
    request: Request,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    caller.require(f"{namespace}/{name}", P.ENVIRONMENT_READ)
    env = await environment_or_404(state, namespace, name)
    if env["current_build_id"] is None:
        raise APIError(404, "environment has no current build")
    return await lockfile_response(request, state, env["current_build_id"])
