"""Commands decided from the build's own stream (no I/O): cancel, delete, make current."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from services.api.decisions import cancel_build, check_can_become_current, delete_build
from services.api.envelopes import APIError
from shared.events import (
    BuildCanceled,
    BuildDeleted,
    BuildFailed,
    BuildStarted,
    EventData,
    EventMetadata,
    Packed,
    RecordedEvent,
    SpecSubmitted,
    stream_of_build,
)
from shared.projections.build_state import build_from_stream

AT = datetime(2026, 1, 1, tzinfo=UTC)


def stream(*payloads: EventData, build_id: int = 7) -> list[RecordedEvent]:
    return [
        RecordedEvent(
            global_position=100 + i,
            stream=stream_of_build(build_id),
            version=i + 1,
            event_id=uuid.uuid4(),
            type=p.event_type(),
            schema_version=p.schema_version,
            data=p.model_dump(mode="json"),
            metadata=EventMetadata(),
            occurred_at=AT,
            recorded_at=AT,
        )
        for i, p in enumerate(payloads)
    ]


SUBMITTED = SpecSubmitted(
    build_id=7, namespace="team", environment="analysis", specification={"name": "analysis"},
    sha256="ab" * 32,
)  # fmt: skip
STARTED = BuildStarted(build_id=7)
PACKED = Packed(build_id=7, archive_key=None, logs_key="builds/7/logs.txt", size=1)


def refused(call, *args) -> APIError:  # type: ignore[no-untyped-def]
    with pytest.raises(APIError) as caught:
        call(*args)
    return caught.value


def test_the_stream_folds_to_the_builds_status() -> None:
    assert build_from_stream([]) is None
    assert build_from_stream(stream(SUBMITTED)).status == "QUEUED"  # type: ignore[union-attr]
    assert build_from_stream(stream(SUBMITTED, STARTED)).status == "BUILDING"  # type: ignore[union-attr]
    done = build_from_stream(stream(SUBMITTED, STARTED, PACKED))
    assert done is not None and done.status == "COMPLETED" and done.deleted_on is None


def test_cancel_is_decided_on_the_latest_status() -> None:
    assert cancel_build(7, stream(SUBMITTED, STARTED)) == [BuildCanceled(build_id=7)]
    error = refused(cancel_build, 7, stream(SUBMITTED, STARTED, PACKED))
    assert error.status_code == 400 and "since it is COMPLETED" in error.message
    canceled = stream(SUBMITTED, BuildCanceled(build_id=7))
    assert "since it is CANCELED" in refused(cancel_build, 7, canceled).message
    assert refused(cancel_build, 7, []).status_code == 404


def test_delete_needs_a_finished_build_and_happens_once() -> None:
    failed = stream(SUBMITTED, STARTED, BuildFailed(build_id=7, phase="solve", reason="x"))
    assert delete_build(7, ["LOGS"], failed) == [BuildDeleted(build_id=7, kept_artifacts=["LOGS"])]
    assert "not finished" in refused(delete_build, 7, [], stream(SUBMITTED, STARTED)).message
    gone = stream(SUBMITTED, STARTED, PACKED, BuildDeleted(build_id=7))
    assert delete_build(7, [], gone) == []  # already deleted: nothing more to record


def test_only_a_completed_live_build_of_the_environment_becomes_current() -> None:
    done = stream(SUBMITTED, STARTED, PACKED)
    check_can_become_current(7, ("team", "analysis"), done)
    other = refused(check_can_become_current, 7, ("team", "other"), done)
    assert "does not match environment name" in other.message
    running = refused(check_can_become_current, 7, ("team", "analysis"), done[:2])
    assert "not completed" in running.message
    deleted = stream(SUBMITTED, STARTED, PACKED, BuildDeleted(build_id=7))
    assert (
        "not completed"
        in refused(check_can_become_current, 7, ("team", "analysis"), deleted).message
    )
    assert (
        "does not exist" in refused(check_can_become_current, 7, ("team", "analysis"), []).message
    )
