"""Removing a build's stored artifacts after its deletion event is recorded.

The event is the fact; removal follows it, so a crash in between leaves orphaned files, never a
build whose files vanished without a record.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.artifacts import ArtifactNotFound
from shared.artifacts.keys import build_prefix
from shared.logging import get_logger

from .state import ApiState

log = get_logger(__name__)


async def delete_build_files(
    state: ApiState, build_id: int, keys: dict[str, str], keep: Iterable[str] = ()
) -> list[str]:
    """Delete every artifact of the build whose type is not in ``keep``; returns deleted keys."""
    kept = set(keep)
    deleted: list[str] = []
    for artifact_type, key in keys.items():
        if artifact_type in kept or artifact_type == "DIRECTORY" or not key:
            continue
        try:
            await state.artifacts.delete(key)
            deleted.append(key)
        except (ArtifactNotFound, ValueError):
            continue
        except Exception as exc:  # storage hiccup: the deletion event stands, files linger
            log.warning("artifact deletion failed", build_id=build_id, key=key, error=str(exc))
    if not kept:
        try:
            await state.artifacts.delete_prefix(build_prefix(build_id))
        except Exception as exc:
            log.warning("artifact prefix deletion failed", build_id=build_id, error=str(exc))
    return deleted


async def delete_builds_files(state: ApiState, build_ids: list[int]) -> None:
    """Every artifact of these builds (environment and namespace deletion ignore the keep list)."""
    rows = await state.pool.fetch(
        "SELECT build_id, artifact_type, key FROM build_artifacts WHERE build_id = ANY($1)",
        build_ids,
    )
    by_build: dict[int, dict[str, str]] = {b: {} for b in build_ids}
    for r in rows:
        by_build[r["build_id"]][r["artifact_type"]] = r["key"]
    for build_id, keys in by_build.items():
        await delete_build_files(state, build_id, keys)
