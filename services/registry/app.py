"""The distribution API, pull side (OCI distribution spec "Pull" category) on ``/v2/``.

Push endpoints answer ``405 UNSUPPORTED``: images are made by the builder from lockfiles,
never uploaded. Blobs stream from the artifact store chunk by chunk (with ``Range``); no blob
is held in memory. Blobs are content-addressed and shared by every image, so a blob request
needs read access to the repository named in the URL (knowing a digest is not enough to reach
a private repository's manifest, which lists them).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from shared.artifacts import RangeNotSatisfiable
from shared.http_edge import EdgeGuard
from shared.wire import Int64

from . import repository
from .access import Access
from .blobs import Blobs
from .errors import API_VERSION_HEADER, RegistryError, edge_error, registry_error_handler
from .oci import is_digest, negotiate, variants
from .resolve import Resolver, parse_name

PUSH_METHODS = ["POST", "PUT", "PATCH", "DELETE"]
MAX_PAGE = 1000


def create_app(access: Access, resolver: Resolver, blobs: Blobs, max_body_bytes: int) -> FastAPI:
    """The registry app; the service (or a test) wires its collaborators."""
    app = FastAPI(title="conda-store registry", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(RegistryError, registry_error_handler)
    app.add_middleware(EdgeGuard, max_body_bytes=max_body_bytes, render=edge_error)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok", "service": "registry"}

    @app.get("/v2/")
    @app.get("/v2")
    async def base(request: Request) -> JSONResponse:
        # As conda-store: anonymous callers get the Basic challenge here. OCI clients (skopeo,
        # podman, docker) only send credentials for the schemes this ping announces, and go on
        # without any when they have none, so public images still pull anonymously.
        if (await access.caller(request)).token is None:
            raise RegistryError("UNAUTHORIZED", {"reason": "log in with any username and a token"})
        return JSONResponse({}, headers=API_VERSION_HEADER)

    @app.get("/v2/_catalog")
    async def catalog(
        request: Request, n: Int64 | None = None, last: str | None = None
    ) -> JSONResponse:
        caller = await access.caller(request)
        names = [
            name
            for name in await repository.repositories(resolver.pool)
            if caller.can_read(*name.split("/", 1))
        ]
        page, link = _paginate(names, n, last, "/v2/_catalog")
        return JSONResponse({"repositories": page}, headers={**API_VERSION_HEADER, **link})

    @app.get("/v2/{name:path}/tags/list")
    async def tags_list(
        request: Request, name: str, n: Int64 | None = None, last: str | None = None
    ) -> JSONResponse:
        repo, tags = await resolver.tags(name, await access.caller(request))
        page, link = _paginate(tags, n, last, f"/v2/{name}/tags/list")
        return JSONResponse({"name": name, "tags": page}, headers={**API_VERSION_HEADER, **link})

    @app.api_route("/v2/{name:path}/manifests/{reference}", methods=["GET", "HEAD"])
    async def manifest(request: Request, name: str, reference: str) -> Response:
        resolved = await resolver.manifest(name, reference, await access.caller(request))
        if resolved.pinned_digest is not None:
            chosen = next(
                v for v in variants(resolved.oci_body) if v.digest == resolved.pinned_digest
            )
        else:
            chosen = negotiate(request.headers.get("accept"), resolved.oci_body)
        headers = {
            **API_VERSION_HEADER,
            "Docker-Content-Digest": chosen.digest,
            "Content-Type": chosen.media_type,
            "Content-Length": str(len(chosen.body)),
            "ETag": f'"{chosen.digest}"',
        }
        body = b"" if request.method == "HEAD" else chosen.body
        return Response(body, headers=headers, media_type=chosen.media_type)

    @app.api_route("/v2/{name:path}/blobs/{digest}", methods=["GET", "HEAD"])
    async def blob(request: Request, name: str, digest: str) -> Response:
        repo = parse_name(name)
        (await access.caller(request)).require_read(repo.namespace, repo.environment)
        if not is_digest(digest):
            raise RegistryError("DIGEST_INVALID", {"digest": digest})
        info = await blobs.stat(digest)
        if info is None:
            raise RegistryError("BLOB_UNKNOWN", {"digest": digest})
        headers = {
            **API_VERSION_HEADER,
            "Docker-Content-Digest": digest,
            "Accept-Ranges": "bytes",
            "ETag": f'"{digest}"',
            "Cache-Control": "max-age=31536000",
        }
        start, end, status = _byte_range(request.headers.get("range"), info.size)
        if status == 416:
            headers["Content-Range"] = f"bytes */{info.size}"
            raise _range_error(headers)
        length = info.size if start is None else end - start + 1  # type: ignore[operator]
        headers["Content-Length"] = str(length)
        if start is not None:
            headers["Content-Range"] = f"bytes {start}-{end}/{info.size}"
        if request.method == "HEAD":
            return Response(
                b"", status_code=status, headers=headers, media_type="application/octet-stream"
            )
        try:
            stream = blobs.stream(digest, start, end)
        except RangeNotSatisfiable as exc:
            raise _range_error(headers) from exc
        return StreamingResponse(
            stream, status_code=status, headers=headers, media_type="application/octet-stream"
        )

    @app.api_route("/v2/{rest:path}", methods=PUSH_METHODS)
    async def push(rest: str) -> Response:
        raise RegistryError(
            "UNSUPPORTED",
            {"reason": "this registry is read-only; images are built from environments"},
        )

    return app


def _range_error(headers: dict[str, str]) -> RegistryError:
    error = RegistryError("RANGE_INVALID", status=416)
    error.headers = {k: v for k, v in headers.items() if k == "Content-Range"}
    return error


def _byte_range(header: str | None, size: int) -> tuple[int | None, int | None, int]:
    """(start, end inclusive, status) for a single-range ``Range`` header; others → 200."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None, None, 200
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                return None, None, 416
            start, end = max(size - suffix, 0), size - 1
        else:
            start = int(first)
            end = int(last) if last else size - 1
    except ValueError:
        return None, None, 200
    if start >= size or end < start:
        return None, None, 416
    return start, min(end, size - 1), 206


def _paginate(
    items: list[str], n: int | None, last: str | None, path: str
) -> tuple[list[str], dict[str, Any]]:
    """The spec's ``n``/``last`` pagination, with a ``Link: <...>; rel="next"`` header."""
    if last:
        items = [item for item in items if item > last]
    if n is None:
        return items, {}
    if n < 0:
        raise RegistryError("PAGINATION_NUMBER_INVALID", {"n": n})
    n = min(n, MAX_PAGE)
    page = items[:n]
    if len(items) > n and page:
        return page, {"Link": f'<{path}?n={n}&last={quote(page[-1])}>; rel="next"'}
    return page, {}
