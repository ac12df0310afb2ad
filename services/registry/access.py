"""Who may pull what: conda-store's tokens and role bindings applied to ``<ns>/<env>``.

Credentials are those of the API (Basic with any username and the token as password, Bearer,
or the API's cookie), signed with the shared ``settings.secret``. Anonymous callers get the
unauthenticated bindings (``default/*: viewer``), so public images pull without a login; a
pull that needs credentials gets 401 with a Basic challenge (clients then retry with the
configured login), and a caller whose credentials lack ``ENVIRONMENT_READ`` gets 403.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.requests import HTTPConnection

from shared.auth import (
    AuthenticationToken,
    Permission,
    TokenCodec,
    effective_bindings,
    extract_credential,
    is_authorized,
)
from shared.logging import get_logger
from shared.settings import Settings

from .errors import RegistryError

log = get_logger(__name__)


class AccessConfig(BaseSettings):
    """The API's RBAC settings, read from the same ``CONDA_STORE_*`` variables."""

    model_config = SettingsConfigDict(env_prefix="CONDA_STORE_", extra="ignore")

    cookie_name: str = "conda-store-auth"
    jwt_algorithm: str = "HS256"
    predefined_tokens: dict[str, dict[str, Any]] = Field(default_factory=dict)
    role_mappings_version: Literal[1, 2] = 1
    unauthenticated_role_bindings: dict[str, list[str]] = Field(
        default_factory=lambda: {"default/*": ["viewer"]}
    )
    authenticated_role_bindings: dict[str, list[str]] = Field(
        default_factory=lambda: {"default/*": ["viewer"], "filesystem/*": ["viewer"]}
    )


@dataclass(frozen=True)
class Caller:
    token: AuthenticationToken | None
    bindings: dict[str, list[str]]

    def can_read(self, namespace: str, environment: str) -> bool:
        return is_authorized(
            self.bindings, f"{namespace}/{environment}", Permission.ENVIRONMENT_READ
        )  # noqa: E501

    def require_read(self, namespace: str, environment: str) -> None:
        if self.can_read(namespace, environment):
            return
        if self.token is None:
            raise RegistryError("UNAUTHORIZED", {"repository": f"{namespace}/{environment}"})
        raise RegistryError("DENIED", {"repository": f"{namespace}/{environment}"})


class Access:
    def __init__(
        self, settings: Settings, pool: asyncpg.Pool, config: AccessConfig | None = None
    ) -> None:  # noqa: E501
        self.config = config or AccessConfig()
        secret = settings.secret
        if not secret:
            log.warning("no CONDA_STORE_SECRET: tokens from the API will not be accepted")
            secret = secrets.token_hex(32)
        self.codec = TokenCodec(
            secret, self.config.jwt_algorithm, predefined_tokens=self.config.predefined_tokens
        )
        self.pool = pool

    async def caller(self, conn: HTTPConnection) -> Caller:
        credential = extract_credential(
            conn.cookies, conn.headers.get("authorization"), self.config.cookie_name
        )
        token = self.codec.authenticate(credential)
        if token is None:
            bindings = effective_bindings(
                None, False, unauthenticated_defaults=self.config.unauthenticated_role_bindings
            )
        else:
            bindings = effective_bindings(
                token,
                True,
                authenticated_defaults=self.config.authenticated_role_bindings,
                db_bindings=await self._db_bindings(token.primary_namespace),
            )
        return Caller(token, bindings)

    async def _db_bindings(self, primary_namespace: str) -> dict[str, list[str]]:
        """Role mappings of the caller's primary namespace (v1) or granted to it (v2)."""
        try:
            if self.config.role_mappings_version == 1:
                value = await self.pool.fetchval(
                    "SELECT role_mappings FROM namespaces WHERE name = $1 AND deleted_on IS NULL",
                    primary_namespace,
                )
                return dict(value or {})
            rows = await self.pool.fetch(
                "SELECT n.name, m->>'role' AS role FROM namespaces n, "
                "jsonb_array_elements(n.role_mappings_v2) m "
                "WHERE n.deleted_on IS NULL AND m->>'other_namespace' = $1",
                primary_namespace,
            )
        except asyncpg.UndefinedTableError:
            return {}
        return {f"{r['name']}/*": [r["role"]] for r in rows}
