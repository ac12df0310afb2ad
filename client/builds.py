"""Build-level operations shared by ``wait``, ``create --wait``, ``download`` and ``logs``."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import httpx

from .api import Api
from .errors import CondaStoreError
from .progress import bar

# --artifact of `wait` -> the build artifact type whose presence means "done"
WAIT_ARTIFACTS = {
    "lockfile": "LOCKFILE",
    "yaml": "YAML",
    "archive": "CONDA_PACK",
    "docker": "DOCKER_MANIFEST",
}
# --artifact of `download` -> (route under /build/{id}/, default file extension)
DOWNLOADS = {
    "lockfile": ("lockfile/", "lock"),
    "yaml": ("yaml/", "yaml"),
    "archive": ("archive/", "tar.gz"),
    "logs": ("logs/", "log"),
    "sbom": ("sbom/", "cdx.json"),  # an extension: the build's CycloneDX SBOM
}


def _failure(build_id: int, build: dict[str, Any]) -> CondaStoreError | None:
    """FAILED and CANCELED are final: report them with the server's reason (``status_info``)."""
    status = build.get("status")
    reason = (build.get("status_info") or "").strip()
    suffix = f": {reason}" if reason else ""
    if status == "FAILED":
        return CondaStoreError(f"Build {build_id} failed{suffix}")
    if status == "CANCELED":
        return CondaStoreError(f"Build {build_id} was canceled{suffix}")
    return None


def never_made(build_id: int, build: dict[str, Any], artifact: str) -> CondaStoreError | None:
    """A completed build that will never have ``artifact`` (the server's ``build_artifacts``
    setting left it out, or its image failed): say so instead of waiting for the timeout."""
    if build.get("status") != "COMPLETED" or artifact in ("build", "lockfile", "yaml"):
        return None
    if artifact == "archive":
        return CondaStoreError(
            f"Build {build_id} has no archive: the build_artifacts setting has no CONDA_PACK"
        )
    image = build.get("image") or {}
    if artifact == "docker" and image.get("status") in ("SKIPPED", "FAILED"):
        reason = image.get("reason") or image["status"].lower()
        return CondaStoreError(f"Build {build_id} has no docker image: {reason}")
    return None


def is_done(build: dict[str, Any], artifact: str) -> bool:
    if artifact == "build":
        return build.get("status") == "COMPLETED"
    wanted = WAIT_ARTIFACTS[artifact]
    types = {a.get("artifact_type") for a in build.get("build_artifacts") or []}
    return wanted in types


def wait_for(
    api: Api, build_id: int, artifact: str = "build", timeout: float = 600, interval: float = 10
) -> dict[str, Any]:
    """Poll ``/build/{id}/`` until done; FAILED/CANCELED and the timeout raise (exit 1)."""
    deadline = time.monotonic() + timeout
    with bar(f"build {build_id}: waiting") as progress:
        while True:
            build = api.get_data(f"/build/{build_id}/")
            if is_done(build, artifact):
                return build
            failure = _failure(build_id, build) or never_made(build_id, build, artifact)
            if failure is not None:
                raise failure
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CondaStoreError(f"Build {build_id} failed to complete in {timeout:g} seconds")
            progress.update(description=f"build {build_id}: {build.get('status', '?').lower()}")
            time.sleep(min(interval, remaining))


def download(api: Api, build_id: int, artifact: str, filename: str | None) -> Path:
    """Stream one artifact to disk (following the 307 to storage); returns the absolute path."""
    route, extension = DOWNLOADS[artifact]
    target = Path(filename or f"build-{build_id}.{extension}").absolute()
    partial = target.with_name(target.name + ".part")
    try:
        with api.stream(f"/build/{build_id}/{route}") as response:
            total = response.headers.get("content-length")
            with (
                bar(f"build {build_id} {artifact}", float(total) if total else None, True) as pg,
                partial.open("wb") as out,
            ):
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
                    pg.advance(len(chunk))
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(target)
    return target


def stream_logs(api: Api, build_id: int, follow: bool) -> None:
    """Copy the build log to stdout as it arrives.

    The server streams a running build's log until the build ends; without ``--follow`` we
    print what exists now: a finished build's whole log, or a running build's log so far.
    """
    build = api.get_data(f"/build/{build_id}/")
    running = build.get("status") in ("QUEUED", "BUILDING")
    timeout = httpx.Timeout(None, connect=10.0) if follow or not running else None
    if running and not follow:
        timeout = httpx.Timeout(10.0, connect=10.0, read=1.5)
    out = sys.stdout.buffer
    try:
        with api.stream(f"/build/{build_id}/logs/", timeout=timeout) as response:
            for chunk in response.iter_bytes():
                out.write(chunk)
                out.flush()
    except CondaStoreError as exc:
        if running and not follow and "timed out" in str(exc):
            return  # nothing more for now: that is what "no --follow" means
        raise
