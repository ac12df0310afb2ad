"""The update check's pure parts: which packages got newer, and which environments are due."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.api.queries.updates import CheckState
from services.api.update_schedule import due
from services.solver.updates import updates_between
from shared.events import PackageRef

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def ref(name: str, version: str, build: str = "h0_0", manager: str = "conda") -> PackageRef:
    return PackageRef(manager=manager, name=name, version=version, build=build)  # type: ignore[arg-type]


def test_only_newer_versions_are_updates() -> None:
    built = [
        ref("numpy", "1.26.4"),
        ref("six", "1.16.0"),
        ref("zlib", "1.3", "h1"),
        ref("rich", "13.0", "", "pip"),
    ]
    now = [
        ref("numpy", "1.26.10"),
        ref("six", "1.15.0"),
        ref("zlib", "1.3", "h2"),
        ref("rich", "13.1", "", "pip"),
        ref("new", "1"),
    ]
    updates, changed = updates_between(built, now)
    assert [(u.manager, u.name, u.version, u.newer) for u in updates] == [
        ("conda", "numpy", "1.26.4", "1.26.10"),
        ("pip", "rich", "13.0", "13.1"),
    ]
    assert changed == 5  # a downgrade, a rebuild and an addition differ but are no updates
    assert updates_between(built, built) == ([], 0)


def state(
    checked_build: int | None, requested: datetime | None, checked: datetime | None
) -> CheckState:
    return CheckState("ns", "env", 7, checked_build, requested, checked)


def test_environments_are_due_once_per_interval_and_for_a_new_current_build() -> None:
    assert due([state(None, None, None)], NOW, DAY)  # never checked
    assert not due([state(7, NOW - timedelta(hours=2), NOW - timedelta(hours=2))], NOW, DAY)
    assert due([state(7, NOW - 2 * DAY, NOW - 2 * DAY)], NOW, DAY)
    assert due([state(6, NOW, NOW)], NOW, DAY)  # the check was of the previous build
    # asked an hour ago and not answered yet: not asked again
    assert not due([state(7, NOW - timedelta(hours=1), NOW - 3 * DAY)], NOW, DAY)
