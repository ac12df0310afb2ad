"""A small synchronous client for conda-store's ``/api/v1``.

Why our own instead of upstream's: upstream appends ``/`` after query strings (so every filter
422s), loses the login cookie on IP-literal hosts, and pages environments incorrectly. Here
paths always carry their trailing slash *before* the query, the login cookie is stored for
the exact host, and ``paginate`` walks ``page=1..`` until ``count`` items arrived.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, Literal

import httpx

from .errors import CondaStoreError

AuthMode = Literal["none", "token", "basic"]
AUTH_COOKIE = "conda-store-auth"
PAGE_SIZE = 100
_MAX_PAGES = 100_000
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


def _require_env(env: Mapping[str, str], name: str, mode: str) -> str:
    value = env.get(name)
    if not value:
        raise CondaStoreError(f"--auth {mode} needs the environment variable {name}")
    return value


def error_message(response: httpx.Response) -> str:
    """The server's own words: the envelope's ``message``, FastAPI's ``detail``, or the text."""
    try:
        body = response.json()
    except ValueError:
        text = response.text.strip().splitlines()
        return text[0][:200] if text else response.reason_phrase
    if isinstance(body, dict):
        if body.get("message"):
            return str(body["message"])
        detail = body.get("detail")
        if isinstance(detail, list):
            parts = []
            for item in detail:
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "query")
                parts.append(f"{loc}: {item.get('msg')}" if loc else str(item.get("msg")))
            return "; ".join(parts)
        if detail:
            return str(detail)
    return response.reason_phrase


class Api:
    """One HTTP session against ``{url}/api/v1``; logs in lazily for ``--auth basic``."""

    def __init__(
        self,
        url: str,
        auth: AuthMode = "none",
        verify_ssl: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: httpx.Timeout = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.base = f"{self.url}/api/v1"
        self.auth = auth
        self.env = os.environ if env is None else env
        self._logged_in = False
        self._cookie: str | None = None
        self._origin = _origin(httpx.URL(self.url))
        headers = {"User-Agent": "conda-store-es-client"}
        if auth == "token":
            headers["Authorization"] = f"Bearer {_require_env(self.env, 'CONDA_STORE_TOKEN', auth)}"
        self.http = httpx.Client(
            headers=headers,
            verify=verify_ssl,
            follow_redirects=True,
            timeout=timeout,
            transport=transport,
            event_hooks={"request": [self._add_cookie]},
        )

    def close(self) -> None:
        self.http.close()

    # --- auth ------------------------------------------------------------------------------

    def login(self) -> None:
        """POST ``{url}/login/`` and keep the cookie, bound to the exact host (IPs included)."""
        username = _require_env(self.env, "CONDA_STORE_USERNAME", "basic")
        password = _require_env(self.env, "CONDA_STORE_PASSWORD", "basic")
        response = self._send(
            "POST", f"{self.url}/login/", json={"username": username, "password": password}
        )
        if response.status_code >= 400:
            raise CondaStoreError(f"login failed: {error_message(response)}")
        # read Set-Cookie ourselves: cookie jars refuse some hosts, and upstream silently
        # stayed anonymous on 127.0.0.1 because of that
        value = None
        for header in response.headers.get_list("set-cookie"):
            name, _, rest = header.partition("=")
            if name.strip() == AUTH_COOKIE:
                value = rest.split(";", 1)[0].strip()
        if not value:
            raise CondaStoreError(f"login succeeded but the server set no {AUTH_COOKIE} cookie")
        self._cookie = value
        self._logged_in = True

    def _add_cookie(self, request: httpx.Request) -> None:
        """Send the login cookie to our own origin only, redirects included.

        A request hook rather than the cookie jar: ``http.cookiejar`` rejects cookies for
        ``localhost`` and IPv6 literals, and httpx drops ``Cookie`` on every redirect.
        """
        if self._cookie is not None and _origin(request.url) == self._origin:
            request.headers["Cookie"] = f"{AUTH_COOKIE}={self._cookie}"

    def _ensure_auth(self) -> None:
        if self.auth == "basic" and not self._logged_in:
            self.login()

    # --- requests --------------------------------------------------------------------------

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self.http.request(method, url, **kwargs)
        except httpx.TimeoutException as exc:
            raise CondaStoreError(f"{method} {url} timed out") from exc
        except httpx.HTTPError as exc:
            raise CondaStoreError(f"cannot reach {url}: {exc}") from exc

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """``path`` is relative to ``/api/v1`` and ends with ``/`` (the query goes after it)."""
        self._ensure_auth()
        response = self._send(method, f"{self.base}{path}", **kwargs)
        if response.status_code >= 400:
            raise CondaStoreError(
                f"{method} {path} failed ({response.status_code}): {error_message(response)}"
            )
        return response

    def get_json(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        try:
            return self.request("GET", path, params=_clean(params)).json()
        except ValueError as exc:
            raise CondaStoreError(f"GET {path}: the server did not answer JSON") from exc

    def get_data(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        body = self.get_json(path, params)
        if not isinstance(body, dict) or "data" not in body:
            raise CondaStoreError(f"GET {path}: unexpected answer (no 'data')")
        return body["data"]

    def post_data(self, path: str, payload: Any) -> Any:
        body = self.request("POST", path, json=payload).json()
        return body.get("data") if isinstance(body, dict) else body

    def paginate(self, path: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every item of a v1 list: pages 1..n until ``count`` items arrived (or a short page)."""
        items: list[Any] = []
        for page in range(1, _MAX_PAGES):
            body = self.get_json(path, {**(params or {}), "page": page, "size": PAGE_SIZE})
            if not isinstance(body, dict) or not isinstance(body.get("data"), list):
                raise CondaStoreError(f"GET {path}: unexpected answer (not a paginated list)")
            data = body["data"]
            items.extend(data)
            count = body.get("count")
            size = body.get("size") or PAGE_SIZE
            if not data or len(data) < size or (count is not None and len(items) >= count):
                break
        return items

    @contextmanager
    def stream(
        self, path: str, timeout: httpx.Timeout | None = DEFAULT_TIMEOUT
    ) -> Iterator[httpx.Response]:
        """GET a download, following 307s to storage (a presigned URL never sees our token)."""
        self._ensure_auth()
        url = f"{self.base}{path}"
        try:
            with self.http.stream("GET", url, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    raise CondaStoreError(
                        f"GET {path} failed ({response.status_code}): {error_message(response)}"
                    )
                yield response
        except httpx.TimeoutException as exc:
            raise CondaStoreError(f"GET {url} timed out") from exc
        except httpx.HTTPError as exc:
            raise CondaStoreError(f"download from {url} failed: {exc}") from exc


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    default = {"http": 80, "https": 443}.get(url.scheme)
    return (url.scheme, url.host, url.port or default)


def _clean(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Drop unset filters so the server sees only what the user asked for."""
    if params is None:
        return None
    return {k: v for k, v in params.items() if v is not None and v != [] and v != ()}
