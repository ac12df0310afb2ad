"""Version, permissions, usage and token minting."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Depends
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, ValidationError

from shared.auth import (
    AuthenticationToken,
    InvalidArnError,
    TokenMintError,
    UnknownRoleError,
    mint_token,
    permission_response_data,
)
from shared.auth_store import db_role_bindings
from shared.events import TokenIssued

from ..commands import emit
from ..deps import Caller, api_state, get_caller
from ..envelopes import APIError, ok
from ..names import check_name_length
from ..queries import namespaces
from ..state import ApiState

VERSION = "2025.2.2"
router = APIRouter()


@router.get("/api/v1/")
async def version() -> Response:
    return ok({"version": VERSION})


@router.get("/api/v1/permission/")
async def permission(
    caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
) -> Response:
    default_ns = await _default_namespace(state)
    return ok(permission_response_data(caller.token, caller.bindings, default_ns))


@router.get("/api/v1/usage/")
async def usage(
    caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
) -> Response:
    return ok(await namespaces.usage(state.pool, caller.patterns()))


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")
    primary_namespace: str | None = None
    expiration: datetime | None = None
    role_bindings: dict[str, list[str]] | None = None


@router.post("/api/v1/token/")
async def create_token(
    body: TokenRequest | None = Body(None),
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    request = body or TokenRequest()
    check_name_length("namespace", request.primary_namespace)
    lookups: dict[str, Any] = {}
    for ns in {
        caller.token.primary_namespace if caller.token else None,
        request.primary_namespace,
    } - {None}:
        lookups[ns] = await db_role_bindings(
            state.pool,
            ns,
            state.settings.role_mappings_version,  # type: ignore[arg-type]
        )
    try:
        token = mint_token(
            caller.token,
            primary_namespace=request.primary_namespace,
            expiration=request.expiration,
            role_bindings=request.role_bindings,
            default_namespace=await _default_namespace(state),
            authenticated_defaults=state.settings.authenticated_role_bindings,
            db_bindings_for=lambda ns: lookups.get(ns, {}),
        )
    except TokenMintError as exc:
        raise APIError(400, exc.message) from exc
    except (InvalidArnError, UnknownRoleError, ValidationError, ValueError) as exc:
        raise APIError(400, f"invalid role_bindings: {exc}") from exc
    await emit(
        state,
        f"tokens-{token.primary_namespace}",
        TokenIssued(
            primary_namespace=token.primary_namespace,
            role_bindings=token.role_bindings,
            expiration=token.exp,
        ),
        actor=caller.actor,
        wait=False,
    )
    return ok({"token": state.codec.encode(token)})


async def _default_namespace(state: ApiState) -> str:
    return await namespaces.default_namespace(
        state.pool, state.runtime_defaults.get("default_namespace")
    )


def decode_for_filter(state: ApiState, jwt: str) -> AuthenticationToken | None:
    return state.codec.authenticate(jwt)
