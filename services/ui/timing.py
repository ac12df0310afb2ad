"""``Server-Timing: render;dur=<ms>`` on every response, so render time is visible in the
browser's devtools and measurable by the benchmark without guessing network overhead."""

from __future__ import annotations

import time
from typing import Any

Scope = dict[str, Any]


class ServerTiming:
    """Pure ASGI (no buffering), so streamed build logs pass through untouched."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()

        async def timed_send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                elapsed = (time.perf_counter() - start) * 1000
                headers = list(message.get("headers", []))
                headers.append((b"server-timing", f"render;dur={elapsed:.1f}".encode()))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, timed_send)
