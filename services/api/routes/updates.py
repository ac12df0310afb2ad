"""``/api/v1/environment/<ns>/<name>/updates/`` (an extension): GET the latest update check of
the environment's current build, POST to ask for one now. Rebuilding with the updates is
``PUT /api/v1/build/<current>/``, as any rebuild."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from shared.auth import Permission as P

from ..commands import wait_for
from ..deps import Caller, api_state, get_caller
from ..envelopes import APIError, ok
from ..queries import builds, updates
from ..queries.updates import CheckState
from ..state import ApiState
from ..update_schedule import request_check
from .environments import environment_or_404

router = APIRouter(prefix="/api/v1/environment")


@router.get("/{namespace}/{name}/updates/")
async def get_updates(
    namespace: str,
    name: str,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    caller.require(f"{namespace}/{name}", P.ENVIRONMENT_READ)
    env = await environment_or_404(state, namespace, name)
    return ok(await updates.latest(state.pool, namespace, name, env["current_build_id"]))


@router.post("/{namespace}/{name}/updates/")
async def check_updates(
    namespace: str,
    name: str,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    """The solver answers within a solve's time; GET shows ``pending`` until then."""
    caller.require(f"{namespace}/{name}", P.ENVIRONMENT_UPDATE)
    env = await environment_or_404(state, namespace, name)
    if env["deleted_on"] is not None:
        raise APIError(404, "environment does not exist")
    build_id = env["current_build_id"]
    build = await builds.get(state.pool, build_id) if build_id is not None else None
    if build is None or build["status"] != "COMPLETED":
        raise APIError(400, "the environment has no completed current build to check")
    check = CheckState(namespace, name, build_id, None, None, None)
    await wait_for(state, await request_check(state.store, check, "request", caller.actor))
    return ok(await updates.latest(state.pool, namespace, name, build_id), "update check requested")
