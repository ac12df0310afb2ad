"""``GET /api/v1/build/{a}/diff/{b}/``: what changed from build a to build b (an extension;
conda-store has no diff). ``GET /api/v1/build/{b}/diff/`` compares with the previous
completed build of the same environment."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from shared.build_diff import diff_builds
from shared.conda_formats import compare_versions
from shared.wire import Int64

from ..deps import Caller, api_state, get_caller
from ..envelopes import APIError, ok
from ..queries import builds
from ..state import ApiState
from .artifacts import readable_build

router = APIRouter(prefix="/api/v1/build")


def _side(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "namespace": row["namespace"],
        "environment": row["environment"],
        "status": row["status"],
        "build_key": row["build_key"],
    }


async def build_diff(state: ApiState, old: Any, new: Any) -> dict[str, Any]:
    """The diff of two builds' rows (of any environments, already checked readable)."""
    diff = diff_builds(
        await builds.pins(state.pool, old["id"]),
        await builds.pins(state.pool, new["id"]),
        await builds.submitted_spec(state.pool, old["specification_id"]) or {},
        await builds.submitted_spec(state.pool, new["specification_id"]) or {},
        compare_versions,
    )
    return {"from": _side(old), "to": _side(new), **diff.to_json()}


@router.get("/{build_id}/diff/{other_id}/")
async def diff_two(
    build_id: Int64,
    other_id: Int64,
    caller: Caller = Depends(get_caller),
    state: ApiState = Depends(api_state),
) -> Response:
    old = await readable_build(state, caller, build_id)
    return ok(await build_diff(state, old, await readable_build(state, caller, other_id)))


@router.get("/{build_id}/diff/")
async def diff_previous(
    build_id: Int64, caller: Caller = Depends(get_caller), state: ApiState = Depends(api_state)
) -> Response:
    new = await readable_build(state, caller, build_id)
    previous = await builds.previous_build_id(state.pool, build_id)
    if previous is None:
        raise APIError(404, f"build {build_id} has no earlier completed build to compare with")
    return ok(await build_diff(state, await readable_build(state, caller, previous), new))
