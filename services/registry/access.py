"""Who may pull what: conda-store's tokens and role bindings applied to ``<ns>/<env>``.

Credentials are those of the API (Basic with any username and the token as password, Bearer,
or the API's cookie), signed with the shared ``settings.secret``. Anonymous callers get the
unauthenticated bindings (``default/*: viewer``), so public images pull without a login; a
pull that needs credentials gets 401 with a Basic challenge (clients then retry with the
configured login), and a caller whose credentials lack ``ENVIRONMENT_READ`` gets 403.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
from starlette.requests import HTTPConnection

from shared.auth import (
    AuthenticationToken,
    Permission,
    TokenCodec,
    extract_credential,
    is_authorized,
)
from shared.auth_store import caller_bindings, jwt_secret
from shared.logging import get_logger
from shared.settings import Settings

from .errors import RegistryError

log = get_logger(__name__)


@dataclass(frozen=True)
class Caller:
    token: AuthenticationToken | None
    bindings: dict[str, list[str]]

    def can_read(self, namespace: str, environment: str) -> bool:
        return is_authorized(
            self.bindings, f"{namespace}/{environment}", Permission.ENVIRONMENT_READ
        )

    def require_read(self, namespace: str, environment: str) -> None:
        if self.can_read(namespace, environment):
            return
        if self.token is None:
            raise RegistryError("UNAUTHORIZED", {"repository": f"{namespace}/{environment}"})
        raise RegistryError("DENIED", {"repository": f"{namespace}/{environment}"})


class Access:
    def __init__(self, settings: Settings, pool: asyncpg.Pool) -> None:
        self.cookie_name = settings.cookie_name
        self.role_defaults = settings.role_defaults
        self.codec = TokenCodec(
            jwt_secret(settings.secret, settings.data_dir),
            settings.jwt_algorithm,
            predefined_tokens=settings.predefined_tokens,
        )
        self.pool = pool

    async def caller(self, conn: HTTPConnection) -> Caller:
        credential = extract_credential(
            conn.cookies, conn.headers.get("authorization"), self.cookie_name
        )
        token = self.codec.authenticate(credential)
        return Caller(token, await caller_bindings(self.pool, self.role_defaults, token))
