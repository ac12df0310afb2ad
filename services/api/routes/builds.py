"""/api/v1/build/…: list, get, rebuild, delete, cancel, installed packages."""

from __future__ import annotations

import json
from functools import partial

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from shared.auth import Permission
from shared.buildlog import BuildLog
from shared.events import stream_of_build
from shared.spec import SpecificationError, validate_specification
from shared.submission import submit_lockfile, submit_specification
from shared.wire import Int64

from .. import decisions
from ..cleanup import delete_build_files
from ..commands import decide, wait_for_position
from ..deps import Caller, api_state, get_caller
from ..envelopes import APIError, FastJSON, Paging, ack, ok, paging
from ..queries import builds
from ..queries.builds import BuildFilters
from ..state import ApiState
from .artifacts import readable_build
from .filters import ArtifactType, BuildStatus

P = Permission
router = APIRouter(prefix="/api/v1/build")


@router.get("/")
async def list_builds(
    status: BuildStatus | None = None,
    artifact: ArtifactType | None = None,
    environment_id: Int64 | None = None,
    name: str | None = None,
    namespace: str | None = None,
    packages: list[str] = Query([]),
    page: Paging = Depends(paging),
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    filters = BuildFilters(
        status=status.value if status else None,
        artifact=artifact.value if artifact else None,
        environment_id=environment_id,
        name=name,
        namespace=namespace,
        packages=packages,
    )
    data, count = await builds.list_page(state.pool, caller.patterns(), filters, page)
    return page.envelope(data, count)


@router.get("/{build_id}/")
async def get_build(
    build_id: Int64, caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
) -> Response:
    row = await readable_build(state, caller, build_id)
    return ok(await builds.detail(state.pool, row))


async def _build_for(state: ApiState, caller: Caller, build_id: int, *perms: Permission):  # type: ignore[no-untyped-def]
    row = await builds.get(state.pool, build_id)
    if row is None:
        raise APIError(404, "build id does not exist")
    caller.require(f"{row['namespace']}/{row['environment']}", *perms)
    return row


@router.put("/{build_id}/")
async def rebuild(
    build_id: Int64, caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
) -> Response:
    row = await _build_for(state, caller, build_id, P.ENVIRONMENT_UPDATE)
    spec = await builds.submitted_spec(state.pool, row["specification_id"])
    try:
        if row["is_lockfile"]:
            from shared.spec import parse_lockfile_submission

            lock = parse_lockfile_submission(
                await _submitted_lockfile_text(state, build_id, spec),
                spec["name"],
                spec.get("description"),
            )
            settings = await state.runtime_settings(row["namespace"], row["environment"])
            data = await submit_lockfile(
                state.store,
                lock,
                row["namespace"],
                actor=caller.actor,
                settings=settings,
            )
        else:
            settings = await state.runtime_settings(row["namespace"], row["environment"])
            data = await submit_specification(
                state.store,
                validate_specification(spec),
                row["namespace"],
                actor=caller.actor,
                settings=settings,
                rebuild_of=build_id,
            )
    except SpecificationError as exc:
        raise APIError(exc.status, exc.message) from exc
    await wait_for_position(state, data.position)
    return FastJSON(
        {"status": "ok", "data": {"build_id": data.build_id}, "message": "rebuild triggered"}
    )


async def _submitted_lockfile_text(state: ApiState, build_id: int, spec: dict) -> str:
    """The lockfile text the build was submitted with (its first event keeps it), or, for a
    build recorded before texts were kept, its document as JSON."""
    submitted = (await state.store.read_stream(stream_of_build(build_id), 1))[:1]
    text = submitted[0].data.get("lockfile_text") if submitted else None
    return text or json.dumps(spec["lockfile"])


@router.delete("/{build_id}/")
async def delete_build(
    build_id: Int64, caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
) -> Response:
    await _build_for(state, caller, build_id, P.BUILD_DELETE)
    settings = await state.runtime_settings()
    keep = [str(k) for k in settings.build_artifacts_kept_on_deletion]
    keys = await builds.artifacts(state.pool, build_id)
    await decide(
        state,
        stream_of_build(build_id),
        partial(decisions.delete_build, build_id, keep),
        actor=caller.actor,
    )
    await delete_build_files(state, build_id, keys, keep)
    return ack()


@router.put("/{build_id}/cancel/")
async def cancel_build(
    build_id: Int64, caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
) -> Response:
    await _build_for(state, caller, build_id, P.BUILD_CANCEL)
    message = f"build {build_id} marked as CANCELED due to being canceled from the REST API"
    await decide(
        state,
        stream_of_build(build_id),
        partial(decisions.cancel_build, build_id),
        actor=caller.actor,
    )
    await BuildLog(state.pool, build_id).write("cancel", message)
    return ack(f"build {build_id} canceled")


@router.get("/{build_id}/packages/")
async def build_packages(
    build_id: Int64,
    search: str | None = None,
    exact: str | None = None,
    build: str | None = None,
    page: Paging = Depends(paging),
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    await readable_build(state, caller, build_id)
    data, count = await builds.packages_page(state.pool, build_id, search, bool(exact), build, page)
    return page.envelope(data, count)
