"""Error bodies shaped as the OCI distribution spec requires: ``{"errors": [{code, message,
detail}]}``, with the status each code implies and the challenge header on 401."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

API_VERSION_HEADER = {"Docker-Distribution-Api-Version": "registry/2.0"}
CHALLENGE = 'Basic realm="Registry Realm"'

_CODES: dict[str, tuple[int, str]] = {
    "NAME_UNKNOWN": (404, "repository name not known to registry"),
    "NAME_INVALID": (400, "invalid repository name"),
    "MANIFEST_UNKNOWN": (404, "manifest unknown"),
    "BLOB_UNKNOWN": (404, "blob unknown to registry"),
    "DIGEST_INVALID": (400, "provided digest did not match uploaded content"),
    "UNAUTHORIZED": (401, "authentication required"),
    "DENIED": (403, "requested access to the resource is denied"),
    "UNSUPPORTED": (405, "The operation is unsupported."),
    "TOOMANYREQUESTS": (429, "too many requests"),
    "RANGE_INVALID": (416, "invalid content range"),
    "PAGINATION_NUMBER_INVALID": (400, "invalid number of results requested"),
}


def edge_error(status: int, message: str) -> bytes:
    """The edge guard's refusals (see ``shared.http_edge``) in the spec's error shape."""
    code = "SIZE_INVALID" if status == 413 else "NAME_INVALID"
    return json.dumps({"errors": [{"code": code, "message": message}]}).encode()


class RegistryError(Exception):
    """Raise anywhere in a handler; the app turns it into the spec's error body."""

    def __init__(self, code: str, detail: Any = None, *, status: int | None = None) -> None:
        default_status, message = _CODES[code]
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status or default_status
        self.headers: dict[str, str] = {}


def error_response(exc: RegistryError, head: bool = False) -> JSONResponse:
    headers = {**API_VERSION_HEADER, **exc.headers}
    if exc.status == 401:
        headers["WWW-Authenticate"] = CHALLENGE
    body: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.detail is not None:
        body["detail"] = exc.detail
    response = JSONResponse({"errors": [body]}, status_code=exc.status, headers=headers)
    if head:  # HEAD answers carry the status and headers only
        response.body = b""
        response.headers["content-length"] = "0"
    return response


async def registry_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RegistryError)
    return error_response(exc, head=request.method == "HEAD")
