"""Login back-ends that turn credentials into an :class:`AuthenticationToken`.

Kept free of I/O: the OAuth HTTP round trips are supplied by the caller as an
:class:`OAuthTransport`, so the flow is testable without a network and the web layer chooses its own
HTTP client.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from shared.auth.tokens import AuthenticationToken

ADMIN_EVERYWHERE: dict[str, list[str]] = {"*/*": ["admin"]}
OAUTH_STATE_MISMATCH = "OAuth states do not match"


def _login_token(username: str) -> AuthenticationToken:
    # Every upstream authenticator grants admin on */*; real restriction comes from deployment
    # bindings.
    return AuthenticationToken(
        primary_namespace=username, role_bindings={k: list(v) for k, v in ADMIN_EVERYWHERE.items()}
    )


@dataclass(frozen=True)
class DummyAuthenticator:
    """conda-store's default ``DummyAuthentication``: any username, one shared password.

    An empty ``password`` accepts any password, as upstream does.
    """

    password: str = "password"

    def authenticate(self, credentials: Mapping[str, Any]) -> AuthenticationToken | None:
        """Token for a ``POST /login/`` JSON body ``{"username", "password"}``; ``None`` -> 403."""
        supplied = credentials.get("password")
        if self.password and not (
            isinstance(supplied, str) and hmac.compare_digest(supplied, self.password)
        ):
            return None
        username = credentials.get("username")
        if not isinstance(username, str) or not username:
            return None
        return _login_token(username)


class OAuthError(Exception):
    """The OAuth exchange failed in a way the caller should report (state mismatch -> 401)."""

    def __init__(self, message: str, status_code: int = 401) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class OAuthTransport(Protocol):
    """The two HTTP calls of the authorization-code flow, injected by the web layer."""

    async def post_form(
        self, url: str, data: Mapping[str, str], headers: Mapping[str, str]
    ) -> tuple[int, Any]:
        """POST form data; return (status code, decoded JSON body or None)."""
        ...

    async def get_json(self, url: str, headers: Mapping[str, str]) -> tuple[int, Any]:
        """GET; return (status code, decoded JSON body or None)."""
        ...


def add_query(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` set in its query, replacing same-named ones and keeping others."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query.extend(params.items())
    encoded = urlencode(query, quote_via=quote, safe="/:@")
    return urlunsplit(parts._replace(query=encoded))


@dataclass(frozen=True)
class OAuthAuthenticator:
    """Provider-agnostic OAuth2/OIDC authorization-code login (``GenericOAuthAuthentication``)."""

    client_id: str
    client_secret: str
    authorize_url: str
    access_token_url: str
    user_data_url: str
    user_data_key: str
    access_scope: str | None = None
    tls_verify: bool = True

    @classmethod
    def github(
        cls,
        client_id: str,
        client_secret: str,
        github_url: str = "https://github.com",
        github_api: str = "https://api.github.com",
    ) -> OAuthAuthenticator:
        """GitHub defaults (``GithubOAuthAuthentication``)."""
        return cls(
            client_id=client_id,
            client_secret=client_secret,
            authorize_url=f"{github_url}/login/oauth/authorize",
            access_token_url=f"{github_url}/login/oauth/access_token",
            user_data_url=f"{github_api}/user",
            user_data_key="login",
            access_scope="user:email",
        )

    @classmethod
    def jupyterhub(
        cls, client_id: str, client_secret: str, jupyterhub_url: str
    ) -> OAuthAuthenticator:
        """JupyterHub defaults (``JupyterHubOAuthAuthentication``); the URL excludes ``/hub/``."""
        return cls(
            client_id=client_id,
            client_secret=client_secret,
            authorize_url=f"{jupyterhub_url}/hub/api/oauth2/authorize",
            access_token_url=f"{jupyterhub_url}/hub/api/oauth2/token",
            user_data_url=f"{jupyterhub_url}/hub/api/user",
            user_data_key="name",
            access_scope="profile",
        )

    @staticmethod
    def new_state() -> str:
        """A fresh anti-CSRF ``state``; store it in the session before redirecting."""
        return secrets.token_urlsafe()

    def authorization_url(self, redirect_uri: str, state: str | None = None) -> str:
        """Where ``GET /login/`` redirects the browser."""
        params = {
            "client_id": self.client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
        }
        if self.access_scope is not None:
            params["scope"] = self.access_scope
        if state is not None:
            params["state"] = state
        return add_query(self.authorize_url, params)

    def token_request(self, code: str, redirect_uri: str) -> dict[str, str]:
        """Form body for the code -> access-token exchange."""
        return {
            "code": code,
            "grant_type": "authorization_code",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "redirect_uri": redirect_uri,
        }

    @staticmethod
    def check_state(expected: str | None, received: str | None) -> None:
        """Reject a callback whose ``state`` differs from the one stored at login (CSRF guard)."""
        if expected is None or received is None or not hmac.compare_digest(expected, received):
            raise OAuthError(OAUTH_STATE_MISMATCH, status_code=401)

    @staticmethod
    def access_token_from(status: int, body: Any) -> str | None:
        """The access token of the exchange response, or ``None`` when the provider refused."""
        if status != 200 or not isinstance(body, Mapping):
            return None
        token = body.get("access_token")
        return token if isinstance(token, str) and token else None

    def token_for_user(self, user_data: Any) -> AuthenticationToken | None:
        """Map the provider's user JSON to a token named ``user_data[user_data_key]``."""
        if not isinstance(user_data, Mapping):
            return None
        username = user_data.get(self.user_data_key)
        if username is None or username == "":
            return None
        return _login_token(str(username))

    async def authenticate(
        self,
        *,
        code: str | None,
        state: str | None,
        expected_state: str | None,
        redirect_uri: str,
        transport: OAuthTransport,
    ) -> AuthenticationToken | None:
        """Complete the callback: check state, exchange the code, fetch the user, issue our token.

        Raises :class:`OAuthError` on a state mismatch; returns ``None`` for any provider refusal so
        the caller answers like a failed login. Upstream answers a failed user-data request with
        500.
        """
        self.check_state(expected_state, state)
        if not code:
            return None
        status, body = await transport.post_form(
            self.access_token_url,
            self.token_request(code, redirect_uri),
            {"Accept": "application/json"},
        )
        access_token = self.access_token_from(status, body)
        if access_token is None:
            return None
        status, user = await transport.get_json(
            self.user_data_url, {"Authorization": f"Bearer {access_token}"}
        )
        if status != 200:
            return None
        return self.token_for_user(user)
