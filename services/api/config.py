"""API-only configuration (authentication, RBAC, paging), read from ``CONDA_STORE_*`` variables.

Kept apart from :mod:`shared.settings` because only the gateway needs it; JSON-valued variables
(e.g. ``CONDA_STORE_PREDEFINED_TOKENS='{"tok": {"primary_namespace": "ci"}}'``) are parsed by
pydantic-settings.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.auth import AuthConfig


class ApiConfig(AuthConfig):
    """conda-store's traitlets for the server, authentication and RBAC, as environment variables."""

    model_config = SettingsConfigDict(env_prefix="CONDA_STORE_", extra="ignore")

    max_page_size: int = 100
    enable_ui: bool = Field(
        default=True, description="Serve the ui service's pages at / (conda-store's enable_ui)."
    )
    webhooks_enabled: bool = Field(
        default=True, description="Deliver events to registered webhooks (one API replica leads)."
    )
    webhook_retry_base_s: float = Field(
        default=1.0, gt=0, description="Wait after a webhook's first failed delivery (doubled)."
    )
    webhook_retry_cap_s: float = Field(
        default=300.0, gt=0, description="Longest wait between attempts; retried there forever."
    )
    webhook_failing_after: int = Field(
        default=5, ge=1, description="Failures in a row after which a webhook shows as failing."
    )
    dummy_password: str = "password"
    oauth_provider: Literal["", "generic", "github", "jupyterhub"] = ""
    oauth_client_id: str = ""
    oauth_client_secret: str = ""
    oauth_authorize_url: str = ""
    oauth_access_token_url: str = ""
    oauth_user_data_url: str = ""
    oauth_user_data_key: str = "name"
    oauth_access_scope: str | None = None
    oauth_callback_url: str | None = None
    oauth_github_url: str = "https://github.com"
    oauth_github_api: str = "https://api.github.com"
    oauth_jupyterhub_url: str = ""
