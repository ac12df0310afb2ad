"""The solver's announcement of a channel change: what was added and removed, in parts."""

from __future__ import annotations

from services.solver.channels import RECORDS_PER_EVENT, change_events, index_change
from shared.events import ChannelIndexed, new_event
from shared.eventstore.store import MAX_EVENT_BYTES


def test_change_lists_new_changed_and_gone_records() -> None:
    before = {("a", "1", "h0"): "MIT", ("b", "1", "h0"): None, ("c", "2", "h1"): "BSD"}
    after = {("a", "1", "h0"): "MIT", ("b", "1", "h0"): "Apache-2.0", ("d", "3", "h0"): None}
    added, removed = index_change(before, after)
    assert [(r.name, r.license) for r in added] == [("b", "Apache-2.0"), ("d", None)]
    assert [(r.name, r.version, r.build) for r in removed] == [("c", "2", "h1")]
    assert index_change(after, after) == ([], [])


def test_a_large_change_is_split_into_events_under_the_size_limit() -> None:
    after = {(f"pkg-{i:06d}", "1.0.0", "py311h1234567_0"): "BSD-3-Clause" for i in range(9000)}
    added, removed = index_change({("gone", "1", "h0"): None}, after)
    events = change_events("https://example.org/conda-forge", "linux-64", "2:abc", added, removed)
    assert [(e.part, e.parts) for e in events] == [(1, 3), (2, 3), (3, 3)]
    assert [len(e.added) + len(e.removed) for e in events] == [RECORDS_PER_EVENT] * 2 + [1001]
    assert [r.name for e in events for r in e.removed] == ["gone"]
    assert sum(len(e.added) for e in events) == 9000
    for event in events:
        assert len(new_event(event).model_dump_json()) < MAX_EVENT_BYTES


def test_a_first_index_of_an_empty_subdir_is_still_said_once() -> None:
    events = change_events("https://example.org/c", "noarch", "2:empty", [], [])
    assert events == [
        ChannelIndexed(channel="https://example.org/c", subdir="noarch", fingerprint="2:empty")
    ]
