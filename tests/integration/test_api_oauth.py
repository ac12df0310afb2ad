"""OAuth2 login end to end: the gateway and a small authorization server, both real HTTP
servers on free ports, and a client that follows the redirects as a browser does."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
from fastapi import FastAPI, Header, Request
from fastapi.responses import JSONResponse, RedirectResponse

from services.api.app import create_app
from shared.embedded.ports import free_port
from tests.fixtures.api import ApiHarness, api  # noqa: F401
from tests.harness.serving import serve_healthy

CLIENT_ID = "conda-store"
CLIENT_SECRET = "provider-test-secret"


def authorization_server(users: dict[str, str]) -> tuple[FastAPI, list[dict[str, Any]]]:
    """Issues a code per login, swaps it for an access token, answers the user request; a
    user name in ``users`` maps the next authorization to that user."""
    app = FastAPI()
    seen: list[dict[str, Any]] = []
    codes: dict[str, str] = {}
    tokens: dict[str, str] = {}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/authorize")
    async def authorize(request: Request) -> RedirectResponse:
        query = dict(request.query_params)
        seen.append({"authorize": query})
        code = f"code-{len(codes)}"
        codes[code] = users["next"]
        back = {"code": code, "state": query.get("state", "")}
        return RedirectResponse(f"{query['redirect_uri']}?{urlencode(back)}", 302)

    @app.post("/token")
    async def token(request: Request) -> JSONResponse:
        form = {k: v[0] for k, v in parse_qs((await request.body()).decode()).items()}
        code, grant_type = form.get("code", ""), form.get("grant_type")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        redirect_uri = form.get("redirect_uri")
        seen.append({"token": {"code": code, "grant_type": grant_type, "uri": redirect_uri}})
        if (client_id, client_secret) != (CLIENT_ID, CLIENT_SECRET) or code not in codes:
            return JSONResponse({"error": "invalid_grant"}, 400)
        access = f"access-{code}"
        tokens[access] = codes.pop(code)  # a code works once
        return JSONResponse({"access_token": access, "token_type": "bearer"})

    @app.get("/user")
    async def user(authorization: str = Header("")) -> JSONResponse:
        name = tokens.get(authorization.removeprefix("Bearer "))
        if name is None:
            return JSONResponse({"message": "bad token"}, 401)
        return JSONResponse({"name": name, "email": f"{name}@example.org"})

    return app, seen


async def test_oauth_login_round_trip(api: ApiHarness) -> None:  # noqa: F811
    users = {"next": "carol"}
    provider, seen = authorization_server(users)
    provider_port, api_port = free_port(), free_port()
    provider_url = f"http://127.0.0.1:{provider_port}"
    oauth = dict(
        oauth_provider="generic",
        oauth_client_id=CLIENT_ID,
        oauth_client_secret=CLIENT_SECRET,
        oauth_authorize_url=f"{provider_url}/authorize",
        oauth_access_token_url=f"{provider_url}/token",
        oauth_user_data_url=f"{provider_url}/user",
        oauth_user_data_key="name",
        oauth_access_scope="profile",
    )
    gateway = create_app(api.state.settings.model_copy(update=oauth), store=api.store)
    servers = [
        await serve_healthy(provider, provider_port),
        await serve_healthy(gateway, api_port),
    ]
    base = f"http://127.0.0.1:{api_port}"
    try:
        async with httpx.AsyncClient(base_url=base, timeout=20) as browser:
            # /login/ → the provider → back to the callback, which sets our cookie
            r = await browser.get("/login/?next=/api/v1/permission/", follow_redirects=True)
            assert r.status_code == 200, r.text
            assert str(r.url) == f"{base}/api/v1/permission/"
            data = r.json()["data"]
            assert data["authenticated"] is True
            assert data["primary_namespace"] == "carol"
            authorize = seen[0]["authorize"]
            assert authorize["client_id"] == CLIENT_ID
            assert authorize["scope"] == "profile"
            assert authorize["redirect_uri"] == f"{base}/oauth_callback/"
            assert seen[1]["token"]["grant_type"] == "authorization_code"

            # the cookie is ours (a signed conda-store token), not the provider's
            assert browser.cookies.get("conda-store-auth")
            assert "conda-store-oauth-state" not in browser.cookies

        async with httpx.AsyncClient(base_url=base, timeout=20) as stranger:
            # a callback with someone else's state is refused and sets no cookie
            start = await stranger.get("/login/")
            assert start.status_code == 307
            location = urlsplit(start.headers["location"])
            assert location.netloc == f"127.0.0.1:{provider_port}"
            state = parse_qs(location.query)["state"][0]
            forged = await stranger.get(f"/oauth_callback/?code=code-9&state={state}x")
            assert forged.status_code in (400, 401, 403), forged.text
            assert "conda-store-auth" not in stranger.cookies
            # a code the provider never issued: the exchange fails, no login
            bad = await stranger.get(f"/oauth_callback/?code=nope&state={state}")
            assert bad.status_code == 403
            assert bad.json()["status"] == "error"
            assert "conda-store-auth" not in stranger.cookies
    finally:
        for task, stop in servers:
            stop.set()
            await task
