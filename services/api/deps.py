"""Who is calling: the token from cookie/Bearer/Basic, and the caller's effective role bindings.

Invalid or expired credentials mean anonymous (conda-store never answers 401 on the API).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from fastapi import Request

from shared.auth import (
    AuthenticationToken,
    Permission,
    extract_credential,
    is_authorized,
    list_filter_patterns,
)
from shared.auth_store import caller_bindings

from .envelopes import forbidden
from .state import ApiState


@dataclass(frozen=True)
class Caller:
    token: AuthenticationToken | None
    bindings: dict[str, list[str]]

    @property
    def authenticated(self) -> bool:
        return self.token is not None

    @property
    def actor(self) -> str:
        return self.token.primary_namespace if self.token else "anonymous"

    def can(self, arn: str, *permissions: Permission) -> bool:
        return is_authorized(self.bindings, arn, set(permissions))

    def require(self, arn: str, *permissions: Permission) -> None:
        """403 ``request not authorized`` unless every permission is held on ``arn``."""
        if not self.can(arn, *permissions):
            raise forbidden()

    def patterns(self) -> tuple[list[str], list[str]]:
        """(namespace, name) SQL LIKE patterns of every binding, for list filtering."""
        pairs = list_filter_patterns(self.bindings)
        return [p[0] for p in pairs], [p[1] for p in pairs]


async def api_state(request: Request) -> ApiState:
    """Async on purpose, as every dependency here: FastAPI runs a plain ``def`` dependency in
    a worker thread, a thread hand-off per request for an attribute read."""
    return request.app.state.api


async def bindings_for(state: ApiState, token: AuthenticationToken | None) -> dict[str, list[str]]:
    return await caller_bindings(state.pool, state.settings.role_defaults, token)


async def get_caller(request: Request) -> Caller:
    """FastAPI dependency: the authenticated (or anonymous) caller of this request."""
    state: ApiState = request.app.state.api
    credential = extract_credential(
        request.cookies, request.headers.get("authorization"), state.settings.cookie_name
    )
    token = state.codec.authenticate(credential)
    return Caller(token, await bindings_for(state, token))


def require_all(caller: Caller, arn: str, permissions: Iterable[Permission]) -> None:
    caller.require(arn, *permissions)
