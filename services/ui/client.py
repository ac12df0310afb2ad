"""The ui service's only window on the system: the API gateway, over HTTP, as the user.

Every call carries the browser's ``conda-store-auth`` cookie and ``Authorization`` header, so
the API applies the user's own permissions; the ui never decides what someone may see.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
from fastapi import Request

AUTH_COOKIE = "conda-store-auth"


PAGE_SIZE = 100
MAX_PAGES = 100
"""``all_data`` stops there (10,000 items): a page must stay quick to render."""


class ApiError(Exception):
    """The API refused or failed; ``message`` is its own text, shown to the user verbatim."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.message = message


def error_message(response: httpx.Response) -> str:
    """conda-store's envelope message, FastAPI's 422 details, or the raw text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip() or response.reason_phrase
    if isinstance(body, dict):
        if isinstance(body.get("message"), str):
            return body["message"]
        detail = body.get("detail")
        if isinstance(detail, str):
            return detail
        if isinstance(detail, list):
            return "; ".join(
                str(d.get("msg", d)) if isinstance(d, dict) else str(d) for d in detail
            )
    return response.text.strip()


def segment(text: str) -> str:
    """``text`` as one path segment of an API URL: a name holding ``/``, ``?``, ``#`` or being
    ``..`` must not reach another route (whose answer a page would misread)."""
    quoted = quote(text, safe="")
    return quoted.replace(".", "%2E") if quoted in (".", "..") else quoted


def credentials_of(request: Request) -> dict[str, str]:
    """The headers that carry the user's identity to the API."""
    headers: dict[str, str] = {}
    cookie = request.cookies.get(AUTH_COOKIE)
    if cookie:
        headers["Cookie"] = f"{AUTH_COOKIE}={cookie}"
    authorization = request.headers.get("authorization")
    if authorization:
        headers["Authorization"] = authorization
    return headers


class ApiClient:
    """One request's API client: the shared connection pool plus this user's credentials."""

    def __init__(self, http: httpx.AsyncClient, headers: dict[str, str]) -> None:
        self.http = http
        self.headers = headers

    async def request(
        self, method: str, path: str, *, params: Any = None, json: Any = None
    ) -> httpx.Response:
        """Send one request; the response is returned whatever its status."""
        return await self.http.request(method, path, params=params, json=json, headers=self.headers)

    async def json(self, method: str, path: str, *, params: Any = None, json: Any = None) -> Any:
        """The decoded JSON body of a successful call; ApiError with the API's text otherwise."""
        response = await self.request(method, path, params=params, json=json)
        if response.status_code >= 400:
            raise ApiError(response.status_code, error_message(response))
        return response.json()

    async def get(self, path: str, **params: Any) -> Any:
        return await self.json("GET", path, params=params or None)

    async def data(self, path: str, **params: Any) -> Any:
        """``data`` of a ``{"status":"ok","data":…}`` envelope."""
        return (await self.get(path, **params)).get("data")

    async def all_data(self, path: str, **params: Any) -> list[Any]:
        """Every item of a paginated list, page after page (the API serves 100 at most)."""
        items: list[Any] = []
        for page in range(1, MAX_PAGES + 1):
            body = await self.get(path, **params, page=page, size=PAGE_SIZE)
            data = body.get("data") or []
            items += data
            if len(data) < PAGE_SIZE or len(items) >= int(body.get("count") or 0):
                break
        return items

    async def data_or_none(self, path: str, **params: Any) -> Any:
        """Like :meth:`data`, but a 403/404 (not yours, or gone) is ``None``."""
        try:
            return await self.data(path, **params)
        except ApiError as exc:
            if exc.status_code in (400, 403, 404):
                return None
            raise

    async def text_or_none(self, path: str) -> str | None:
        """A plain-text answer (e.g. the docker image reference), or None when refused."""
        response = await self.request("GET", path)
        if response.status_code >= 300:
            return None
        return response.text.strip()
