"""/api/v1/setting/[ns/[env/]]: merged runtime settings, updated through SettingsChanged."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import Response

from shared.auth import Permission
from shared.events import SettingsChanged
from shared.runtime_settings import SettingsError, setting_update_message, validate_setting_update
from shared.submission import resolved_settings

from ..commands import emit
from ..deps import Caller, api_state, get_caller
from ..envelopes import APIError, ok
from ..state import ApiState

P = Permission
router = APIRouter(prefix="/api/v1/setting")


async def _get(state: ApiState, caller: Caller, ns: str | None, env: str | None) -> Response:
    arn = "/".join(p for p in (ns, env) if p)
    caller.require(arn, P.SETTING_READ)
    merged = await resolved_settings(state.pool, ns, env)
    return ok(merged.model_dump(mode="json"))


async def _put(
    state: ApiState, caller: Caller, body: dict[str, Any], ns: str | None, env: str | None
) -> Response:
    arn = "/".join(p for p in (ns, env) if p)
    caller.require(arn, P.SETTING_UPDATE)
    level = "environment" if env else "namespace" if ns else "global"
    try:
        values = validate_setting_update(level, body)  # type: ignore[arg-type]
    except SettingsError as exc:
        raise APIError(400, exc.message) from exc
    if values:
        await emit(
            state,
            "settings",
            SettingsChanged(namespace=ns, environment=env, values=values),
            actor=caller.actor,
        )
    return ok(None, setting_update_message(body.keys()))


@router.get("/")
async def get_global(
    caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
) -> Response:
    return await _get(state, caller, None, None)


@router.get("/{namespace}/")
async def get_namespace(
    namespace: str, caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
) -> Response:
    return await _get(state, caller, namespace, None)


@router.get("/{namespace}/{environment}/")
async def get_environment(
    namespace: str,
    environment: str,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    return await _get(state, caller, namespace, environment)


@router.put("/")
async def put_global(
    body: dict[str, Any] = Body(...),
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    return await _put(state, caller, body, None, None)


@router.put("/{namespace}/")
async def put_namespace(
    namespace: str,
    body: dict[str, Any] = Body(...),
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    return await _put(state, caller, body, namespace, None)


@router.put("/{namespace}/{environment}/")
async def put_environment(
    namespace: str,
    environment: str,
    body: dict[str, Any] = Body(...),
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    return await _put(state, caller, body, namespace, environment)
