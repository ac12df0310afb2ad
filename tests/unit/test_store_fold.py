"""The store linker's fold (no I/O) and the store's link and marker primitives (a temp dir)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from services.packer.store import (
    Ownership,
    free_bytes,
    is_complete,
    link_target,
    mark_complete,
    remove_prefix,
    switch_link,
)
from services.packer.store_fold import (
    Link,
    RemoveNamespace,
    RemovePrefix,
    StoreBuild,
    StoreState,
    Unlink,
)
from services.packer.worker import storage_below_threshold

STORE = Path("/store")


def submitted(build_id: int, env: str = "e", ns: str = "n") -> dict:
    return {"build_id": build_id, "namespace": ns, "environment": env, "build_key": f"k{build_id}"}


def run(state: StoreState, *events: tuple[str, dict]) -> list:
    for event_type, data in events:
        state.apply(event_type, data)
    actions, state.actions = state.actions, []
    return actions


def test_packed_links_the_build_and_rollback_moves_the_link() -> None:
    s = StoreState(STORE)
    assert run(s, ("SpecSubmitted", submitted(1))) == []
    assert s.builds[1] == StoreBuild(1, "n", "e", "/store/n/k1", "pending")
    assert run(s, ("Packed", {"build_id": 1, "directory": "/store/n/k1"})) == [
        Link("n", "e", "/store/n/k1")
    ]
    run(s, ("SpecSubmitted", submitted(2)), ("Packed", {"build_id": 2}))
    assert s.links[("n", "e")] == 2
    assert run(s, ("CurrentBuildSet", {"namespace": "n", "environment": "e", "build_id": 1})) == [
        Link("n", "e", "/store/n/k1")
    ]
    assert s.links[("n", "e")] == 1 and s.changed_links == {("n", "e")}


def test_rollback_to_a_build_that_never_completed_changes_nothing() -> None:
    s = StoreState(STORE)
    run(
        s,
        ("SpecSubmitted", submitted(1)),
        ("Packed", {"build_id": 1}),
        ("SpecSubmitted", submitted(2)),
    )
    assert run(s, ("CurrentBuildSet", {"namespace": "n", "environment": "e", "build_id": 2})) == []
    assert s.links[("n", "e")] == 1


def test_a_failed_or_canceled_build_is_removed_and_a_late_packed_never_links() -> None:
    s = StoreState(STORE)
    run(s, ("SpecSubmitted", submitted(1)))
    assert run(s, ("BuildCanceled", {"build_id": 1})) == [RemovePrefix("/store/n/k1")]
    assert s.builds[1].status == "gone"
    # the packer finished just after the cancel: what it left is removed, nothing is linked
    assert run(s, ("Packed", {"build_id": 1})) == [RemovePrefix("/store/n/k1")]
    assert ("n", "e") not in s.links
    run(s, ("SpecSubmitted", submitted(2)), ("Packed", {"build_id": 2}))
    assert run(s, ("BuildFailed", {"build_id": 2})) == []  # after completion: ignored


def test_deleting_the_current_build_removes_its_directory_and_the_link() -> None:
    s = StoreState(STORE)
    run(s, ("SpecSubmitted", submitted(1)), ("Packed", {"build_id": 1}))
    run(s, ("SpecSubmitted", submitted(2)), ("Packed", {"build_id": 2}))
    assert run(s, ("BuildDeleted", {"build_id": 1})) == [RemovePrefix("/store/n/k1")]
    assert run(s, ("BuildDeleted", {"build_id": 2})) == [
        RemovePrefix("/store/n/k2"),
        Unlink("n", "e"),
    ]
    assert s.links[("n", "e")] is None


def test_environment_and_namespace_deletion_remove_everything_of_theirs() -> None:
    s = StoreState(STORE)
    run(
        s,
        ("SpecSubmitted", submitted(1, "a")),
        ("Packed", {"build_id": 1}),
        ("SpecSubmitted", submitted(2, "a")),  # still building when the environment goes
        ("SpecSubmitted", submitted(3, "b")),
        ("Packed", {"build_id": 3}),
    )
    actions = run(s, ("EnvironmentDeleted", {"namespace": "n", "environment": "a"}))
    assert set(actions) == {
        RemovePrefix("/store/n/k1"),
        RemovePrefix("/store/n/k2"),
        Unlink("n", "a"),
    }
    assert run(s, ("Packed", {"build_id": 2})) == [RemovePrefix("/store/n/k2")]
    actions = run(s, ("NamespaceDeleted", {"namespace": "n"}))
    assert RemovePrefix("/store/n/k3") in actions and Unlink("n", "b") in actions
    assert actions[-1] == RemoveNamespace("n")


def test_replaying_an_event_gives_the_same_actions() -> None:
    """The linker writes its rows after the disk: a crash between them replays the event."""
    s = StoreState(STORE)
    run(s, ("SpecSubmitted", submitted(1)))
    first = run(s, ("Packed", {"build_id": 1}))
    assert run(s, ("Packed", {"build_id": 1})) == first


def test_switch_link_is_atomic_relative_and_readers_never_see_it_missing(tmp_path: Path) -> None:
    a, b = tmp_path / "n" / "a", tmp_path / "n" / "b"
    for p in (a, b):
        (p / "conda-meta").mkdir(parents=True)
    link = tmp_path / "n" / "envs" / "e"
    switch_link(link, a)
    assert os.readlink(link) == "../a" and link_target(link) == a.resolve()
    missing: list[int] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            if not os.path.lexists(link):
                missing.append(1)

    reader = threading.Thread(target=read)
    reader.start()
    for i in range(2000):
        switch_link(link, b if i % 2 == 0 else a)
    done.set()
    reader.join()
    assert missing == [] and link_target(link) == a.resolve()
    assert sorted(p.name for p in link.parent.iterdir()) == ["e"]  # no temporary left behind


def test_a_prefix_is_complete_only_after_its_marker(tmp_path: Path) -> None:
    prefix = tmp_path / "p"
    (prefix / "conda-meta").mkdir(parents=True)
    assert not is_complete(prefix)
    mark_complete(prefix, 7, "n", "e", Ownership(permissions="750"))
    assert is_complete(prefix)
    assert oct((prefix / "conda-meta" / "conda-store-build.json").stat().st_mode & 0o777) == "0o750"
    remove_prefix(prefix)
    assert not prefix.exists()


def test_storage_threshold_reason() -> None:
    assert storage_below_threshold(10, 0) is None
    assert storage_below_threshold(10, 10) is None
    reason = storage_below_threshold(9, 10)
    assert reason is not None and "9 bytes free" in reason and "storage_threshold" in reason
    assert free_bytes(Path("/no/such/dir/below/root")) > 0  # measured on the nearest parent
