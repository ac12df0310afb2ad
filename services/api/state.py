"""What the app's lifespan opens once and every request shares."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nats.aio.client import Client

from shared.artifacts import ArtifactStore
from shared.auth import DummyAuthenticator, OAuthAuthenticator, TokenCodec
from shared.bus.jetstream import connect_nats
from shared.eventstore import EventStore
from shared.runtime_settings import ResolvedSettings
from shared.settings import Settings
from shared.submission import resolved_settings


@dataclass
class ApiState:
    settings: Settings
    store: EventStore
    artifacts: ArtifactStore
    codec: TokenCodec
    dummy: DummyAuthenticator
    oauth: OAuthAuthenticator | None
    signing_key: bytes | None = None
    runtime_defaults: dict[str, Any] = field(default_factory=dict)
    """Deploy-time defaults of the runtime settings (``shared.deployment_settings``)."""
    _nats: Client | None = None

    @property
    def pool(self):  # type: ignore[no-untyped-def]
        return self.store.pool

    async def runtime_settings(
        self, namespace: str | None = None, environment: str | None = None
    ) -> ResolvedSettings:
        """The runtime settings in force at a level, deploy-time defaults included."""
        return await resolved_settings(self.pool, namespace, environment, self.runtime_defaults)

    async def nats(self) -> Client:
        """Opened on first use: only the remote solve talks to NATS directly."""
        if self._nats is None or self._nats.is_closed:
            self._nats = await connect_nats(self.settings.nats_url, "api")
        return self._nats

    async def close(self) -> None:
        if self._nats is not None and not self._nats.is_closed:
            await self._nats.close()


def oauth_from_settings(config: Settings) -> OAuthAuthenticator | None:
    """The configured OAuth provider, or None for the default password login."""
    if not config.oauth_provider:
        return None
    if config.oauth_provider == "github":
        return OAuthAuthenticator.github(
            config.oauth_client_id,
            config.oauth_client_secret,
            config.oauth_github_url,
            config.oauth_github_api,
        )
    if config.oauth_provider == "jupyterhub":
        return OAuthAuthenticator.jupyterhub(
            config.oauth_client_id, config.oauth_client_secret, config.oauth_jupyterhub_url
        )
    return OAuthAuthenticator(
        client_id=config.oauth_client_id,
        client_secret=config.oauth_client_secret,
        authorize_url=config.oauth_authorize_url,
        access_token_url=config.oauth_access_token_url,
        user_data_url=config.oauth_user_data_url,
        user_data_key=config.oauth_user_data_key,
        access_scope=config.oauth_access_scope,
    )
