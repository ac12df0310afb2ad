"""``wait`` decisions and error rendering of the client (pure; the API is a scripted fake)."""

from __future__ import annotations

from typing import Any

import pytest

from client import builds
from client.errors import CondaStoreError


class ScriptedApi:
    """Answers ``/build/{id}/`` with the next scripted state, repeating the last one."""

    def __init__(self, *states: dict[str, Any]) -> None:
        self.states = list(states)
        self.calls = 0

    def get_data(self, path: str, params: Any = None) -> dict[str, Any]:
        self.calls += 1
        return self.states[min(self.calls, len(self.states)) - 1]


def _build(status: str, *artifacts: str, info: str | None = None) -> dict[str, Any]:
    return {
        "id": 5,
        "status": status,
        "status_info": info,
        "build_artifacts": [{"artifact_type": a} for a in artifacts],
    }


def test_build_waits_until_completed() -> None:
    api = ScriptedApi(_build("QUEUED"), _build("BUILDING"), _build("COMPLETED"))
    assert builds.wait_for(api, 5, interval=0)["status"] == "COMPLETED"  # type: ignore[arg-type]
    assert api.calls == 3


def test_artifact_waits_for_its_type_only() -> None:
    api = ScriptedApi(_build("BUILDING"), _build("BUILDING", "LOCKFILE", "YAML"))
    builds.wait_for(api, 5, "lockfile", interval=0)  # type: ignore[arg-type]
    assert api.calls == 2
    api = ScriptedApi(_build("BUILDING", "LOCKFILE"), _build("COMPLETED", "LOCKFILE", "CONDA_PACK"))
    builds.wait_for(api, 5, "archive", interval=0)  # type: ignore[arg-type]
    assert api.calls == 2


@pytest.mark.parametrize(
    ("status", "message"),
    [("FAILED", "Build 5 failed: no solution"), ("CANCELED", "Build 5 was canceled: no solution")],
)
def test_failed_and_canceled_end_the_wait(status: str, message: str) -> None:
    api = ScriptedApi(_build("QUEUED"), _build(status, info="no solution"))
    with pytest.raises(CondaStoreError) as caught:
        builds.wait_for(api, 5, "archive", interval=0)  # type: ignore[arg-type]
    assert caught.value.message == message


def test_a_missing_docker_manifest_times_out() -> None:
    api = ScriptedApi(_build("COMPLETED", "CONDA_PACK"))
    with pytest.raises(CondaStoreError, match="Build 5 failed to complete in 0.05 seconds"):
        builds.wait_for(api, 5, "docker", timeout=0.05, interval=0.01)  # type: ignore[arg-type]


def test_artifacts_a_completed_build_will_never_have_end_the_wait() -> None:
    api = ScriptedApi(_build("BUILDING", "LOCKFILE"), _build("COMPLETED", "LOCKFILE", "DIRECTORY"))
    with pytest.raises(CondaStoreError, match="Build 5 has no archive: the build_artifacts"):
        builds.wait_for(api, 5, "archive", interval=0)  # type: ignore[arg-type]
    skipped = {**_build("COMPLETED", "CONDA_PACK"), "image": {"status": "SKIPPED", "reason": "no"}}
    with pytest.raises(CondaStoreError, match="Build 5 has no docker image: no"):
        builds.wait_for(ScriptedApi(skipped), 5, "docker", interval=0)  # type: ignore[arg-type]


def test_multi_line_reasons_keep_one_red_line(capsys: pytest.CaptureFixture[str]) -> None:
    error = CondaStoreError("Build 5 failed: cannot solve\n├─ a\n└─ b\n")
    assert error.message == "Build 5 failed: cannot solve"
    error.show()
    assert capsys.readouterr().err == "Error: Build 5 failed: cannot solve\n├─ a\n└─ b\n"
