"""The edge every HTTP service puts in front of its routes: one place that refuses what no
route could handle, before anything parses it.

- A body over ``max_body_bytes`` gets 413, whether it announced a ``Content-Length`` or came
  chunked (a chunked body is read up to the cap, never further).
- A path, query parameter or JSON body carrying text Postgres cannot store (a NUL character,
  an unpaired surrogate) gets 400 naming where it was (see :mod:`shared.wire`).

Bodies are small here (specifications, settings, tokens), so the guard buffers them and hands
the route the same bytes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from shared.wire import NUL_NOT_ALLOWED, find_bad_text, text_problem

Scope = dict[str, Any]
# JSON escapes that decode to text Postgres cannot store: \u0000, and surrogates \ud800-\udfff
_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89abcdefABCDEF])")


def envelope_error(status: int, message: str) -> bytes:
    """conda-store's error body: ``{"status": "error", "message": ...}``."""
    return json.dumps({"status": "error", "message": message}).encode()


class _TooLarge(Exception):
    pass


def target_problem(scope: Scope) -> str | None:
    """What is wrong with the request's path or query string, or None."""
    problem = text_problem(scope.get("path", ""))
    if problem:
        return f"{problem} (in the path)"
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        for key, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
            if "\x00" in key + value:
                return f"{NUL_NOT_ALLOWED} (query parameter {key!r})"
        return f"{NUL_NOT_ALLOWED} (in the query string)"
    return None


def body_problem(body: bytes) -> str | None:
    """What is wrong with a request body, or None. Bodies that are not JSON are left to the
    route, which answers its own 4xx for them."""
    if b"\x00" in body:
        return f"{NUL_NOT_ALLOWED} (in the request body)"
    if not _SUSPECT_ESCAPE.search(body):
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return None
    found = find_bad_text(value)
    if found is None:
        return None
    where, problem = found
    return f"{problem} (body field {where!r})"


class EdgeGuard:
    """Pure ASGI middleware; ``render`` shapes the error body in the service's own format."""

    def __init__(
        self,
        app: Any,
        max_body_bytes: int,
        render: Callable[[int, str], bytes] = envelope_error,
    ) -> None:
        self.app = app
        self.limit = max_body_bytes
        self.render = render
        self.too_large = f"request body too large; the limit is {max_body_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = target_problem(scope)
        if problem:
            await self._refuse(send, 400, problem)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await self._refuse(send, 413, self.too_large)
            return
        try:
            body, final = await self._read_body(receive)
        except _TooLarge:
            await self._refuse(send, 413, self.too_large)
            return
        problem = body_problem(body)
        if problem:
            await self._refuse(send, 400, problem)
            return
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if replayed:
                return await receive()  # after the body: disconnects, as usual
            replayed = True
            return final if final is not None else {"type": "http.request", "body": body}

        await self.app(scope, replay, send)

    async def _read_body(self, receive: Any) -> tuple[bytes, dict[str, Any] | None]:
        """The whole body, or the message that ended it early (a disconnect) as ``final``."""
        parts: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b"".join(parts), message
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                raise _TooLarge
            parts.append(chunk)
            if not message.get("more_body", False):
                return b"".join(parts), None

    async def _refuse(self, send: Any, status: int, message: str) -> None:
        body = self.render(status, message)
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(body)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
