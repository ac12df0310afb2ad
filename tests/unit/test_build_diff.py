"""The diff of two builds (no I/O): package changes by kind, and the spec's changes."""

from __future__ import annotations

from shared.build_diff import Pin, diff_builds, diff_packages, diff_specs
from shared.conda_formats import compare_versions

CF = "https://conda.anaconda.org/conda-forge"


def conda(name: str, version: str, build: str = "h0_0", channel: str = CF) -> Pin:
    return Pin("conda", name, version, build, channel)


def test_packages_are_sorted_into_added_removed_upgraded_downgraded_and_rebuilt() -> None:
    old = [
        conda("numpy", "1.26.4"),
        conda("python", "3.11.9"),
        conda("six", "1.16.0"),
        conda("zlib", "1.3.1", "h1"),
        Pin("pip", "tomli", "2.0.1"),
    ]
    new = [
        conda("numpy", "1.26.10"),  # a string compare would call this older
        conda("python", "3.11.2"),
        conda("scipy", "1.14.1"),
        conda("zlib", "1.3.1", "h2"),
        Pin("pip", "tomli", "2.0.1.post1"),
    ]
    changes = diff_packages(old, new, compare_versions)
    got = [(c.kind, c.manager, c.name) for c in changes]
    assert got == [
        ("upgraded", "conda", "numpy"),
        ("downgraded", "conda", "python"),
        ("added", "conda", "scipy"),
        ("removed", "conda", "six"),
        ("rebuilt", "conda", "zlib"),
        ("upgraded", "pip", "tomli"),
    ]
    numpy = changes[0]
    assert numpy.old == old[0] and numpy.new == new[0]
    assert diff_packages(old, old, compare_versions) == []


def test_a_channel_move_alone_is_a_rebuild() -> None:
    [change] = diff_packages(
        [conda("six", "1.16.0")],
        [conda("six", "1.16.0", channel="https://mirror/cf")],
        compare_versions,
    )
    assert (
        change.kind == "rebuilt"
        and change.new is not None
        and change.new.channel == "https://mirror/cf"
    )


def test_spec_changes_list_channels_dependencies_pip_and_other_keys() -> None:
    old = {
        "name": "e",
        "channels": ["conda-forge"],
        "dependencies": ["python=3.11", "numpy", {"pip": ["tomli"]}],
    }
    new = {
        "name": "e",
        "channels": ["conda-forge", "bioconda"],
        "dependencies": ["python=3.11", "scipy", {"pip": ["tomli", "rich"]}],
        "description": "now with scipy",
    }
    change = diff_specs(old, new)
    assert change.channels_added == ["bioconda"] and change.channels_removed == []
    assert change.dependencies_added == ["scipy"] and change.dependencies_removed == ["numpy"]
    assert change.pip_added == ["rich"] and change.pip_removed == []
    assert change.other_keys_changed == ["description"]
    assert "-- numpy" in change.text and "+- scipy" in change.text
    assert diff_specs(old, old).text == ""


def test_counts_and_json_shape() -> None:
    diff = diff_builds(
        [conda("a", "1")], [conda("a", "2"), conda("b", "1")], {}, {}, compare_versions
    )
    assert diff.counts() == {"added": 1, "removed": 0, "upgraded": 1, "downgraded": 0, "rebuilt": 0}
    body = diff.to_json()
    assert body["packages"][0]["old"]["version"] == "1" and body["packages"][1]["old"] is None
