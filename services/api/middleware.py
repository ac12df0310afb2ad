"""A tiny ASGI middleware for the real client's ``?a=b/`` habit (the request size cap and
text checks every service shares live in :mod:`shared.http_edge`)."""

from __future__ import annotations

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
