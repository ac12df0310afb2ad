"""Build artifacts: logs (live while building), yaml, lockfile, archive, SBOM, installer,
docker, and the signed ``/storage/<key>`` links of the local backend."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

from fastapi import APIRouter, Depends, Request
from fastapi.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse

from shared.artifacts import (
    ArtifactNotFound,
    RangeNotSatisfiable,
    guess_content_type,
    verify_signature,
)
from shared.auth import Permission
from shared.buildlog import BuildLog
from shared.public_url import registry_host, scope_base
from shared.wire import Int64

from ..deps import Caller, api_state, get_caller
from ..envelopes import DEPRECATED_HEADERS, APIError, error_response
from ..queries import builds
from ..state import ApiState

P = Permission
router = APIRouter()
LINK_LIFETIME = timedelta(hours=1)


async def readable_build(state: ApiState, caller: Caller, build_id: int):  # type: ignore[no-untyped-def]
    """The build row after ENVIRONMENT_READ on its environment (404 before 403: we need its ARN)."""
    row = await builds.get(state.pool, build_id)
    if row is None:
        raise APIError(404, "build id does not exist")
    caller.require(f"{row['namespace']}/{row['environment']}", P.ENVIRONMENT_READ)
    return row


async def redirect_to(request: Request, state: ApiState, key: str) -> Response:
    """307 to the artifact's link. A local ``/storage`` link stays a path, as conda-store's
    are, under the URL prefix: it resolves on whatever origin the visitor used (S3 links
    name their endpoint)."""
    url = await state.artifacts.presigned_url(key, LINK_LIFETIME)
    if url.startswith("/"):
        url = request.scope["root_path"] + url
    return RedirectResponse(url, 307)


async def artifact_redirect(
    request: Request, state: ApiState, build_id: int, artifact: str, what: str
) -> Response:
    key = (await builds.artifacts(state.pool, build_id)).get(artifact)
    if not key:
        raise APIError(404, f"Build {build_id} doesn't have {what}")
    return await redirect_to(request, state, key)


async def lockfile_response(request: Request, state: ApiState, build_id: int) -> Response:
    return await artifact_redirect(request, state, build_id, "LOCKFILE", "a lockfile")


async def _follow_log(state: ApiState, build_id: int) -> AsyncIterator[bytes]:
    """Lines as they are written, until the build is terminal and every line was sent."""
    log = BuildLog(state.pool, build_id)
    woken = asyncio.Event()

    def notified(_conn: object, _pid: int, _channel: str, payload: str) -> None:
        if payload == str(build_id):
            woken.set()

    seq = 0
    async with state.pool.acquire() as listener:
        await listener.add_listener("cs_build_log", notified)
        try:
            while True:
                woken.clear()
                status = await builds.status(state.pool, build_id)
                lines = await log.read(after_seq=seq)
                if lines:
                    seq = lines[-1].seq
                    yield "".join(line.render() + "\n" for line in lines).encode()
                    continue
                if status in builds.TERMINAL:
                    return
                try:
                    await asyncio.wait_for(woken.wait(), 1.0)
                except TimeoutError:
                    pass
        finally:
            await listener.remove_listener("cs_build_log", notified)


@router.get("/api/v1/build/{build_id}/logs/")
async def build_logs(
    build_id: Int64,
    request: Request,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    row = await readable_build(state, caller, build_id)
    key = (await builds.artifacts(state.pool, build_id)).get("LOGS")
    if row["status"] in builds.TERMINAL and key:
        return await redirect_to(request, state, key)
    if row["status"] in builds.TERMINAL:
        text = await BuildLog(state.pool, build_id).text()
        return PlainTextResponse(text)
    return StreamingResponse(
        _follow_log(state, build_id),
        media_type="text/plain; charset=utf-8",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.get("/api/v1/build/{build_id}/yaml/")
async def build_yaml(
    build_id: Int64,
    request: Request,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    await readable_build(state, caller, build_id)
    return await artifact_redirect(request, state, build_id, "YAML", "a yaml")


@router.get("/api/v1/build/{build_id}/lockfile/")
@router.get("/api/v1/build/{build_id}/conda-lock.yaml")
@router.get("/api/v1/build/{build_id}/conda-lock.yml")
async def build_lockfile(
    build_id: Int64,
    request: Request,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    await readable_build(state, caller, build_id)
    return await lockfile_response(request, state, build_id)


@router.get("/api/v1/build/{build_id}/archive/")
async def build_archive(
    build_id: Int64,
    request: Request,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    await readable_build(state, caller, build_id)
    return await artifact_redirect(request, state, build_id, "CONDA_PACK", "an archive")


@router.get("/api/v1/build/{build_id}/sbom/")
async def build_sbom(
    build_id: Int64,
    request: Request,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    """The build's CycloneDX 1.5 JSON SBOM (an extension: conda-store has none); builds that
    completed before SBOMs were made, and unfinished ones, have none (404)."""
    await readable_build(state, caller, build_id)
    return await artifact_redirect(request, state, build_id, "SBOM", "an SBOM")


@router.get("/api/v1/build/{build_id}/installer/")
async def build_installer(
    build_id: Int64,
    request: Request,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    await readable_build(state, caller, build_id)
    key = (await builds.artifacts(state.pool, build_id)).get("CONSTRUCTOR_INSTALLER")
    if not key:
        raise APIError(400, f"Build {build_id} doesn't have an installer")
    return await redirect_to(request, state, key)


@router.get("/api/v1/build/{build_id}/docker/")
async def build_docker(
    build_id: Int64,
    request: Request,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    row = await readable_build(state, caller, build_id)
    if "DOCKER_MANIFEST" not in await builds.artifacts(state.pool, build_id):
        response = error_response(400, f"Build {build_id} doesn't have a docker manifest")
        response.headers.update(DEPRECATED_HEADERS)
        return response
    settings = state.settings
    registry = registry_host(
        scope_base(request.scope), settings.registry_port, settings.registry_external_url
    )
    image = f"{registry}/{row['namespace']}/{row['environment']}:{row['build_key']}"
    return PlainTextResponse(image, headers=DEPRECATED_HEADERS)


def _parse_range(header: str | None) -> tuple[int | None, int | None]:
    if not header or not header.startswith("bytes=") or "," in header:
        return None, None
    first, _, last = header[6:].partition("-")
    try:
        return (int(first) if first else None), (int(last) if last else None)
    except ValueError:
        return None, None


@router.get("/storage/{key:path}")
async def storage(key: str, request: Request, state: ApiState = Depends(api_state)) -> Response:
    """Serve a local-backend object behind a valid, unexpired signature (no token needed)."""
    expires = request.query_params.get("expires", "")
    signature = request.query_params.get("signature", "")
    if state.signing_key is None or not verify_signature(
        key, expires, signature, state.signing_key
    ):
        return error_response(403, "invalid or expired link")
    info = await state.artifacts.stat(key)
    if info is None:
        return error_response(404, "artifact does not exist")
    start, end = _parse_range(request.headers.get("range"))
    headers = {"Accept-Ranges": "bytes"}
    status = 200
    if start is not None or end is not None:
        if start is None:  # suffix range: the last `end` bytes
            start, end = max(info.size - (end or 0), 0), None
        if start >= info.size:
            return Response(status_code=416, headers={"Content-Range": f"bytes */{info.size}"})
        last = info.size - 1 if end is None else min(end, info.size - 1)
        headers["Content-Range"] = f"bytes {start}-{last}/{info.size}"
        headers["Content-Length"] = str(last - start + 1)
        status, end = 206, last
    else:
        headers["Content-Length"] = str(info.size)
    try:
        stream = state.artifacts.open_stream(key, start, end)
        first = await anext(stream, b"")
    except (ArtifactNotFound, RangeNotSatisfiable):
        return error_response(404, "artifact does not exist")

    async def body() -> AsyncIterator[bytes]:
        yield first
        async for chunk in stream:
            yield chunk

    media = info.content_type or guess_content_type(key)
    return StreamingResponse(body(), status_code=status, media_type=media, headers=headers)
