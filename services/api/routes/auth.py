"""Login and logout: the ``conda-store-auth`` cookie, dummy password login or OAuth2."""

from __future__ import annotations

import html
import json
from typing import Any

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError

from shared.auth import AuthenticationToken, OAuthError
from shared.auth.tokens import as_utc, utcnow

from ..deps import api_state
from ..envelopes import FastJSON, error_response
from ..state import ApiState
from . import ui_proxy

router = APIRouter()
STATE_COOKIE = "conda-store-oauth-state"
NEXT_COOKIE = "conda-store-next"
INVALID = "Invalid authentication credentials"

LOGIN_PAGE = """<!doctype html><html><head><title>conda-store login</title></head><body>
<h1>Sign in</h1><form id="login"><input name="username" placeholder="username" autofocus>
<input name="password" type="password" placeholder="password"><button>Sign in</button></form>
<p id="error"></p><script>
document.getElementById('login').onsubmit = async (e) => {
  e.preventDefault();
  const f = new FormData(e.target);
  const r = await fetch(window.location.pathname + '?next=' + encodeURIComponent(%(next)s), {
    method: 'POST',
    headers: {'Content-Type': 'application/json'},
    body: JSON.stringify({username: f.get('username'), password: f.get('password')})});
  const body = await r.json();
  if (r.ok) { window.location = body.data.redirect_url; }
  else { document.getElementById('error').textContent = body.message; }
};
</script></body></html>"""


def _base_url(request: Request) -> str:
    return str(request.base_url)


def safe_next(request: Request, next_url: str | None) -> str:
    """Where to go after login/logout: a path on this site only, never another origin."""
    if next_url and next_url.startswith("/") and not next_url.startswith(("//", "/\\")):
        return next_url
    return _base_url(request)


def set_auth_cookie(response: Response, state: ApiState, token: AuthenticationToken) -> None:
    max_age = max(int((as_utc(token.exp) - utcnow()).total_seconds()), 0)
    response.set_cookie(
        state.settings.cookie_name,
        state.codec.encode(token),
        max_age=max_age,
        httponly=True,
        samesite="strict",
        path="/",
    )


@router.get("/login/")
async def login_page(request: Request, state: ApiState = Depends(api_state)) -> Response:
    next_url = request.query_params.get("next")
    if state.oauth is None:
        page_from_ui = await ui_proxy.ui_proxy("login/", request, state)
        if page_from_ui.status_code == 200:
            return page_from_ui  # the ui's login page, when the ui service runs
        page = LOGIN_PAGE % {"next": html.escape(json.dumps(next_url or ""), quote=False)}
        return HTMLResponse(page)
    oauth_state = state.oauth.new_state()
    response = RedirectResponse(
        state.oauth.authorization_url(_callback_url(request, state), oauth_state), 307
    )
    response.set_cookie(STATE_COOKIE, oauth_state, httponly=True, samesite="lax", max_age=600)
    if next_url:
        response.set_cookie(NEXT_COOKIE, next_url, httponly=True, samesite="lax", max_age=600)
    return response


@router.post("/login/")
async def login(request: Request, state: ApiState = Depends(api_state)) -> Response:
    try:
        body: Any = json.loads(await request.body() or b"{}")
    except ValueError:
        return error_response(403, INVALID)
    try:
        token = state.dummy.authenticate(body) if isinstance(body, dict) else None
    except ValidationError as exc:  # a user name no token can carry
        return error_response(400, f"invalid username: {exc.errors()[0]['msg']}")
    if token is None:
        return error_response(403, INVALID)
    redirect = safe_next(request, request.query_params.get("next"))
    response = FastJSON({"status": "ok", "data": {"redirect_url": redirect}})
    set_auth_cookie(response, state, token)
    return response


@router.api_route("/logout/", methods=["GET", "POST"])
async def logout(request: Request, state: ApiState = Depends(api_state)) -> Response:
    """conda-store's POST; GET too, so the pages' "Log out" link works through the gateway."""
    target = safe_next(request, request.query_params.get("next"))
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(state.settings.cookie_name, path="/")
    return response


def _callback_url(request: Request, state: ApiState) -> str:
    return state.settings.oauth_callback_url or str(request.url_for("oauth_callback"))


class _HttpxTransport:
    """The OAuth flow's two HTTP calls over httpx."""

    def __init__(self, verify: bool) -> None:
        self.verify = verify

    async def post_form(self, url: str, data: Any, headers: Any) -> tuple[int, Any]:
        async with httpx.AsyncClient(verify=self.verify, timeout=20) as client:
            r = await client.post(url, data=dict(data), headers=dict(headers))
        return r.status_code, _json_or_none(r)

    async def get_json(self, url: str, headers: Any) -> tuple[int, Any]:
        async with httpx.AsyncClient(verify=self.verify, timeout=20) as client:
            r = await client.get(url, headers=dict(headers))
        return r.status_code, _json_or_none(r)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@router.get("/oauth_callback/", name="oauth_callback")
async def oauth_callback(request: Request, state: ApiState = Depends(api_state)) -> Response:
    if state.oauth is None:
        return error_response(404, "OAuth is not configured")
    try:
        token = await state.oauth.authenticate(
            code=request.query_params.get("code"),
            state=request.query_params.get("state"),
            expected_state=request.cookies.get(STATE_COOKIE),
            redirect_uri=_callback_url(request, state),
            transport=_HttpxTransport(state.oauth.tls_verify),
        )
    except OAuthError as exc:
        return error_response(exc.status_code, exc.message)
    if token is None:
        return error_response(403, INVALID)
    response = RedirectResponse(safe_next(request, request.cookies.get(NEXT_COOKIE)), 303)
    response.delete_cookie(STATE_COOKIE)
    response.delete_cookie(NEXT_COOKIE)
    set_auth_cookie(response, state, token)
    return response
