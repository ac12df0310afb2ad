"""The HTTP edge of deliveries: one POST, bounded by the webhook's timeout, whatever the
receiver does (refuses, answers 500, accepts and never answers, trickles its answer)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx


@dataclass(frozen=True)
class Outcome:
    """What one POST came to: delivered (a 2xx) or the reason it was not."""

    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def delivered(self) -> bool:
        return self.error is None


def client() -> httpx.AsyncClient:
    """One client per webhook (one connection: its deliveries go in order), so a receiver
    that hangs holds only its own connection. Redirects are not followed: a 3xx is a failure
    the admin sees, not a silent POST of signed events elsewhere."""
    return httpx.AsyncClient(
        follow_redirects=False,
        limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        trust_env=False,
    )


async def post(
    http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str], timeout_s: float
) -> Outcome:
    """POST ``body``; the whole exchange (connect, send, status line) within ``timeout_s``.
    The answer's body is never read."""
    started = time.monotonic()
    status: int | None = None
    error: str | None = None
    try:
        async with asyncio.timeout(timeout_s):
            request = http.build_request(
                "POST", url, content=body, headers=headers, timeout=timeout_s
            )
            response = await http.send(request, stream=True)
            status = response.status_code
            await response.aclose()
        if not 200 <= status < 300:
            error = f"HTTP {status} {response.reason_phrase}".strip()
    except TimeoutError:
        error = f"no answer within {timeout_s:g}s"
    except httpx.TimeoutException:
        error = f"no answer within {timeout_s:g}s"
    except httpx.HTTPError as exc:
        error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return Outcome(status, error, int((time.monotonic() - started) * 1000))
