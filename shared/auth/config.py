"""conda-store's authentication and RBAC configuration, shared by every service that checks
tokens (API gateway, registry), read from the same ``CONDA_STORE_*`` variables."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from .bindings import AUTHENTICATED_ROLE_BINDINGS, UNAUTHENTICATED_ROLE_BINDINGS
from .credentials import AUTH_COOKIE_NAME
from .tokens import DEFAULT_JWT_ALGORITHM


class AuthConfig(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONDA_STORE_", extra="ignore")

    cookie_name: str = AUTH_COOKIE_NAME
    jwt_algorithm: str = DEFAULT_JWT_ALGORITHM
    predefined_tokens: dict[str, dict[str, Any]] = Field(default_factory=dict)
    role_mappings_version: Literal[1, 2] = 1
    unauthenticated_role_bindings: dict[str, list[str]] = Field(
        default_factory=lambda: {k: sorted(v) for k, v in UNAUTHENTICATED_ROLE_BINDINGS.items()}
    )
    authenticated_role_bindings: dict[str, list[str]] = Field(
        default_factory=lambda: {k: sorted(v) for k, v in AUTHENTICATED_ROLE_BINDINGS.items()}
    )
