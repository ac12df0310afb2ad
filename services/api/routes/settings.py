"""/api/v1/setting/[ns/[env/]]: merged runtime settings, updated through SettingsChanged.

``/api/v1/setting-detail/[ns/[env/]]`` is an extra for the settings pages (conda-store has
none): every key with its value, where the value comes from, what it means and what it takes.
The conda-store routes keep their shape.
"""

from __future__ import annotations

import typing
from collections.abc import Awaitable, Callable
from enum import Enum
from typing import Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import Response

from shared.auth import Permission
from shared.events import SettingsChanged
from shared.runtime_settings import (
    SETTING_KEYS,
    RuntimeSettings,
    SettingLevel,
    SettingsError,
    is_global_setting,
    merge_settings,
    setting_sources,
    setting_update_message,
    validate_setting_update,
)
from shared.submission import settings_layers

from ..commands import emit
from ..deps import Caller, api_state, get_caller
from ..envelopes import APIError, ok
from ..state import ApiState

P = Permission
router = APIRouter(prefix="/api/v1")


def _level(ns: str | None, env: str | None) -> SettingLevel:
    return "environment" if env else "namespace" if ns else "global"


async def _get(state: ApiState, caller: Caller, ns: str | None, env: str | None) -> Response:
    arn = "/".join(p for p in (ns, env) if p)
    caller.require(arn, P.SETTING_READ)
    merged = await state.runtime_settings(ns, env)
    return ok(merged.model_dump(mode="json"))


def _value_kind(key: str) -> dict[str, Any]:
    """What a key takes, for a form: ``list``/``integer``/``string``, nullable, and the choices
    of a list of artifact kinds."""
    annotation = RuntimeSettings.model_fields[key].annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    nullable = len(args) < len(typing.get_args(annotation))
    if typing.get_origin(annotation) is list:
        item = args[0]
        choices = (
            [m.value for m in item] if isinstance(item, type) and issubclass(item, Enum) else None
        )
        return {"type": "list", "nullable": False, "choices": choices}
    base = args[0] if nullable else annotation
    return {"type": "integer" if base is int else "string", "nullable": nullable, "choices": None}


async def _detail(state: ApiState, caller: Caller, ns: str | None, env: str | None) -> Response:
    arn = "/".join(p for p in (ns, env) if p)
    caller.require(arn, P.SETTING_READ)
    level = _level(ns, env)
    layers = await settings_layers(state.pool, ns, env)
    merged = merge_settings(state.runtime_defaults, *layers).model_dump(mode="json")
    sources = setting_sources(state.runtime_defaults, *layers)
    rows = [
        {
            "key": key,
            "value": merged[key],
            "source": sources[key],
            "description": RuntimeSettings.model_fields[key].description,
            "scope": "global" if is_global_setting(key) else "namespace",
            "settable": level == "global" or not is_global_setting(key),
            **_value_kind(key),
        }
        for key in SETTING_KEYS
    ]
    return ok({"level": level, "namespace": ns, "environment": env, "settings": rows})


async def _put(
    state: ApiState, caller: Caller, body: dict[str, Any], ns: str | None, env: str | None
) -> Response:
    arn = "/".join(p for p in (ns, env) if p)
    caller.require(arn, P.SETTING_UPDATE)
    try:
        values = validate_setting_update(_level(ns, env), body)
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


@router.put("/setting/")
async def put_global(
    body: dict[str, Any] = Body(...),
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    return await _put(state, caller, body, None, None)


@router.put("/setting/{namespace}/")
async def put_namespace(
    namespace: str,
    body: dict[str, Any] = Body(...),
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    return await _put(state, caller, body, namespace, None)


@router.put("/setting/{namespace}/{environment}/")
async def put_environment(
    namespace: str,
    environment: str,
    body: dict[str, Any] = Body(...),
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    return await _put(state, caller, body, namespace, environment)


Reader = Callable[[ApiState, Caller, str | None, str | None], Awaitable[Response]]


def _get_at_every_level(path: str, reader: Reader) -> None:
    """GET ``path``, ``path{namespace}/`` and ``path{namespace}/{environment}/``, answered by
    ``reader`` for the level the path names."""

    async def global_level(
        caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
    ) -> Response:
        return await reader(state, caller, None, None)

    async def namespace_level(
        namespace: str, caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
    ) -> Response:
        return await reader(state, caller, namespace, None)

    async def environment_level(
        namespace: str,
        environment: str,
        caller: Caller = Depends(get_caller),
        state: ApiState = Depends(api_state),
    ) -> Response:
        return await reader(state, caller, namespace, environment)

    for suffix, endpoint in (
        ("", global_level),
        ("{namespace}/", namespace_level),
        ("{namespace}/{environment}/", environment_level),
    ):
        name = f"{reader.__name__.strip('_')}_{endpoint.__name__}"
        router.add_api_route(path + suffix, endpoint, methods=["GET"], name=name)


_get_at_every_level("/setting/", _get)
_get_at_every_level("/setting-detail/", _detail)
