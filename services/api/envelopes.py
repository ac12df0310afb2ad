"""conda-store's response shapes: envelopes, pagination, errors, datetimes.

Every route answers through these helpers so the wire format lives in one place.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fastapi import Query, Request
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.wire import INT64_MAX, Int64

DEPRECATED_HEADERS = {"Deprecation": "True", "Sunset": "Mon, 17 Mar 2025 00:00:00 UTC"}
NOT_AUTHORIZED = "request not authorized"


class APIError(Exception):
    """An error answered as ``{"status":"error","message":…}`` with its status code."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


def forbidden() -> APIError:
    return APIError(403, NOT_AUTHORIZED)


def _dumps(content: Any) -> bytes:
    return json.dumps(content, separators=(",", ":"), ensure_ascii=False).encode()


class FastJSON(JSONResponse):
    """Compact JSON; the shapes are plain dicts built by the query modules."""

    def render(self, content: Any) -> bytes:
        return _dumps(content)


def ok(
    data: Any = None,
    message: str | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> Response:
    return FastJSON({"status": "ok", "data": data, "message": message}, headers=headers)


def ack(message: str | None = None) -> Response:
    """Ack-only routes omit ``data``."""
    return FastJSON({"status": "ok", "message": message})


def error_response(status_code: int, message: str) -> Response:
    return FastJSON({"status": "error", "message": message}, status_code=status_code)


def iso(value: datetime | None) -> str | None:
    """Naive ISO-8601 in UTC with microseconds and no ``Z``, as conda-store serializes."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat()


@dataclass(frozen=True)
class Paging:
    """v1 paging: ``page``/``size``/``sort_by``/``order`` (size clamped to max_page_size)."""

    page: int
    size: int
    sort_by: list[str]
    descending: bool

    @property
    def offset(self) -> int:
        """Rows to skip; past the last row a page is empty, and SQL's OFFSET is a bigint."""
        return min(max((self.page - 1) * self.size, 0), INT64_MAX)

    def sort_keys(self, allowed: dict[str, str], default: list[str]) -> list[str]:
        """SQL sort expressions for the requested keys; unknown keys are silently ignored."""
        keys = [k for k in self.sort_by if k in allowed] or default
        direction = "DESC" if self.descending else "ASC"
        return [f"{allowed[k]} {direction}" for k in keys]

    def envelope(
        self, data: list[Any], count: int, *, message_key: bool = True, headers: Any = None
    ) -> Response:
        body: dict[str, Any] = {"status": "ok", "data": data}
        if message_key:
            body["message"] = None
        body.update(page=self.page)  # conda-store echoes offset//size+1, i.e. the page
        body.update(size=self.size, count=count)
        return FastJSON(body, headers=headers)


async def paging(
    request: Request,
    page: Int64 = 1,
    size: Int64 | None = None,
    sort_by: list[str] = Query([]),
    order: str | None = None,
) -> Paging:
    max_size: int = request.app.state.api.settings.max_page_size
    chosen = max_size if size is None else max(1, min(size, max_size))
    return Paging(page=page, size=chosen, sort_by=sort_by, descending=order == "desc")


async def api_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, APIError)
    return error_response(exc.status_code, exc.message)


async def too_large_handler(_: Request, exc: Exception) -> Response:
    """An event over the store's size limit: nothing was written."""
    return error_response(413, str(exc))


async def store_unavailable_handler(_: Request, exc: Exception) -> Response:
    """Postgres is restarting or unreachable: a retry soon will work, so 503, not 500."""
    response = error_response(503, "the database is unavailable; retry shortly")
    response.headers["Retry-After"] = "2"
    return response


async def http_error_handler(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    return error_response(exc.status_code, str(exc.detail))
