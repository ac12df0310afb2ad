"""POST /api/v1/specification/: parse, authorize, create the namespace if allowed, submit."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from nats.errors import NoRespondersError
from pydantic import BaseModel, Field

from shared.auth import Permission
from shared.remote_solve import request_solve
from shared.spec import (
    MAX_DESCRIPTION_CHARS,
    SpecificationError,
    allowed_channel_urls,
    normalize_specification,
    parse_specification,
)
from shared.submission import submit_lockfile, submit_normalized

from ..commands import wait_for_position
from ..deps import Caller, api_state, get_caller
from ..envelopes import APIError, ok
from ..names import check_name_length
from ..queries import namespaces
from ..queries.packages import channel_ids
from ..state import ApiState
from .meta import _default_namespace
from .namespaces import create_namespace_events

P = Permission
router = APIRouter()


class SpecificationBody(BaseModel):
    specification: str
    namespace: str | None = None
    is_lockfile: bool = False
    environment_name: str = ""
    environment_description: str = Field(default="", max_length=MAX_DESCRIPTION_CHARS)


def _parse(body: SpecificationBody) -> Any:
    """Parse before authorizing, as conda-store does, so bad input is a 400 even anonymously."""
    try:
        if body.is_lockfile:
            from shared.spec import parse_lockfile_submission

            return parse_lockfile_submission(
                body.specification, body.environment_name, body.environment_description
            )
        return parse_specification(body.specification)
    except SpecificationError as exc:
        raise APIError(exc.status, exc.message) from exc


@router.get("/api/v1/specification/")
async def solve_specification(
    channel: list[str] = Query(default=[]),
    channels: list[str] = Query(default=[]),
    conda: list[str] = Query(default=[]),
    pip: list[str] = Query(default=[]),
    state: ApiState = Depends(api_state),
) -> Response:
    """Remote solve (conda-store's contract: no auth check, ``{"solve": [...]}`` unwrapped).

    Anyone may call it, so channels go through the same policy as builds
    (``conda_allowed_channels`` of the global settings) before anything is fetched: a
    disallowed URL is a 400, never a request from the server. ``channels`` is what
    conda-store's own client sends; its rows need ``size`` and ``channel_id``, which are added.
    Any solver replica answers over NATS from the same cache builds use.
    """
    settings = await state.runtime_settings()
    try:
        urls = allowed_channel_urls(
            channel + channels or list(settings.conda_default_channels), settings
        )
    except SpecificationError as exc:
        raise APIError(400, exc.message) from exc
    request = {
        "channels": urls,
        "conda": conda,
        "pip": pip,
        "platforms": list(settings.conda_solve_platforms),
    }
    try:
        reply = await request_solve(
            await state.nats(), state.settings, request, timeout=settings.conda_max_solve_time
        )
    except (TimeoutError, NoRespondersError) as exc:
        raise APIError(503, f"no solver answered: {type(exc).__name__}") from exc
    if reply.get("status") != "ok":
        raise APIError(400, str(reply.get("message", "solve failed")))
    return JSONResponse({"solve": await _with_channel_ids(state, reply["packages"])})


async def _with_channel_ids(state: ApiState, packages: list[dict[str, Any]]) -> list[dict]:
    """conda-store's solve rows carry ``channel_id`` and a numeric ``size``."""
    names = sorted({p.get("channel") or "" for p in packages})
    ids = await channel_ids(state.pool, names)
    return [
        {**p, "size": p.get("size") or 0, "channel_id": ids.get(p.get("channel") or "")}
        for p in packages
    ]


@router.post("/api/v1/specification/")
async def post_specification(
    body: SpecificationBody,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    spec = _parse(body)
    check_name_length("namespace", body.namespace)
    check_name_length("environment", spec.name)
    namespace = body.namespace or (
        caller.token.primary_namespace if caller.token else await _default_namespace(state)
    )
    caller.require(f"{namespace}/{spec.name}", P.ENVIRONMENT_CREATE)
    missing = await namespaces.get_live(state.pool, namespace) is None
    if missing:
        caller.require(namespace, P.NAMESPACE_CREATE)
    try:
        if body.is_lockfile:
            if missing:
                await create_namespace_events(state, namespace, caller.actor, exist_ok=True)
            settings = await state.runtime_settings(namespace, spec.name)
            data = await submit_lockfile(
                state.store,
                spec,
                namespace,
                actor=caller.actor,
                settings=settings,
            )
        else:
            settings = await state.runtime_settings(namespace, spec.name)
            normalized = normalize_specification(spec, settings)  # refused: nothing written
            if missing:
                await create_namespace_events(state, namespace, caller.actor, exist_ok=True)
            data = await submit_normalized(
                state.store, normalized, namespace, settings, actor=caller.actor
            )
    except SpecificationError as exc:
        raise APIError(exc.status, exc.message) from exc
    await wait_for_position(state, data.position)
    return ok({"build_id": data.build_id})
