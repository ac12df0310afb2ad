"""Tiny ASGI middlewares: the real client's ``?a=b/`` habit, and a request body size cap."""

from __future__ import annotations

import json
from typing import Any

Scope = dict[str, Any]


class QuerySlashMiddleware:
    """Drop one ``/`` appended after a query string (``?status=COMPLETED/``).

    conda-store's client runs every URL through ``ensure_slash``; conda-store then 422s. We
    accept the query as the user meant it.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            query: bytes = scope.get("query_string", b"")
            for tail in (b"/", b"%2F", b"%2f"):
                if query.endswith(tail):
                    scope = dict(scope, query_string=query[: -len(tail)])
                    break
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """413 for bodies above ``limit`` bytes, before anything parses them."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _too_large(send)
            return
        seen = 0

        async def limited() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge()
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await _too_large(send)


class _TooLarge(Exception):
    pass


async def _too_large(send: Any) -> None:
    body = json.dumps({"status": "error", "message": "request body too large"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
