"""Submitting a spec appends one SpecSubmitted with conda-store's hash and build key."""

from __future__ import annotations

import pytest

from shared.events import SettingsChanged, new_event
from shared.eventstore import EventStore
from shared.projections import Projector
from shared.spec import SpecificationError, parse_specification
from shared.submission import resolved_settings, submit_specification

SPEC = "name: name1\nchannels: [conda-forge]\ndependencies: [numpy]\n"


async def test_submission_appends_spec_submitted_with_conda_store_hash(
    event_store: EventStore,
) -> None:
    submitted = await submit_specification(
        event_store, parse_specification(SPEC), "default", actor="u"
    )
    data = submitted.event
    assert data.sha256.startswith("bfa61b4d5fe5c836") and data.sha256.endswith("c3438a8")
    assert data.build_key.startswith(f"bfa61b4d-{int(data.scheduled_on.timestamp())}-")
    assert data.build_key.endswith(f"-{data.build_id}-name1")
    assert data.channels == ["https://conda.anaconda.org/conda-forge"]
    [event] = await event_store.read_stream(f"build-{data.build_id}")
    assert submitted.position == event.global_position  # the caller waits on it, no re-read
    assert event.type == "SpecSubmitted" and event.metadata.actor == "u"
    assert event.metadata.correlation_id == f"build-{data.build_id}"
    again = await submit_specification(event_store, parse_specification(SPEC), "default")
    assert again.build_id == data.build_id + 1  # every submission is a new build


async def test_namespace_settings_apply_and_rejections_write_nothing(
    event_store: EventStore,
) -> None:
    await event_store.append(
        "settings",
        [
            new_event(
                SettingsChanged(
                    namespace="strict",
                    values={"conda_allowed_channels": ["https://example.org/ok"]},
                )
            )
        ],
    )
    projector = Projector(event_store)
    await projector.load()
    for event in await event_store.read_all():
        projector.model.apply(event)
    from shared.projections.store import write_dirty

    async with event_store.transaction() as conn:
        await write_dirty(conn, projector.model, projector.model.take_dirty())
    settings = await resolved_settings(event_store.pool, "strict", "name1")
    assert settings.conda_allowed_channels == ["https://example.org/ok"]

    before = await event_store.last_position()
    with pytest.raises(SpecificationError, match="not allowed in specification"):
        await submit_specification(event_store, parse_specification(SPEC), "strict")
    assert await event_store.last_position() == before
