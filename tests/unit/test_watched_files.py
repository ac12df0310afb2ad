"""What a watch_paths scan takes as a watched file, and what it makes of each one."""

from __future__ import annotations

from pathlib import Path

from shared.settings import Settings
from shared.spec import MAX_SPECIFICATION_BYTES, CondaSpecification
from shared.watched_files import (
    Rejected,
    discover,
    fallback_name,
    parse_watched,
    read_watched,
)

VALID = "name: tools\nchannels: [conda-forge]\ndependencies: [python]\n"


def test_discover_takes_yaml_files_of_directories_and_named_files_once(tmp_path: Path) -> None:
    folder = tmp_path / "envs"
    (folder / "nested").mkdir(parents=True)
    for name in ("b.yml", "a.yaml", ".hidden.yml", "notes.txt", "nested/deep.yml"):
        (folder / name).write_text(VALID)
    single = tmp_path / "single.yml"
    single.write_text(VALID)
    (tmp_path / "other.txt").write_text(VALID)
    paths = [folder, single, folder / "a.yaml", tmp_path / "other.txt", tmp_path / "missing"]
    assert [p.name for p in discover(paths)] == ["a.yaml", "b.yml", "single.yml"]
    assert discover([]) == []


def test_settings_split_watch_paths_on_colons_and_commas() -> None:
    s = Settings(watch_paths="/a:/b, /c,,")
    assert s.watch_path_list == [Path("/a"), Path("/b"), Path("/c")]
    assert Settings().watch_path_list == []


def test_a_valid_file_is_its_specification_named_from_its_content(tmp_path: Path) -> None:
    path = tmp_path / "file-name.yml"
    path.write_text(VALID)
    parsed = parse_watched(read_watched(path))
    assert isinstance(parsed, CondaSpecification) and parsed.name == "tools"


def test_content_hash_changes_with_the_content(tmp_path: Path) -> None:
    path = tmp_path / "env.yml"
    path.write_text(VALID)
    first = read_watched(path)
    path.write_text(VALID + "# a comment\n")
    assert read_watched(path).sha256 != first.sha256
    path.write_text(VALID)
    assert read_watched(path).sha256 == first.sha256


def test_bad_yaml_is_rejected_under_the_file_name_with_where_it_broke(tmp_path: Path) -> None:
    path = tmp_path / "my env!.yaml"
    path.write_text("name: [unclosed\n")
    parsed = parse_watched(read_watched(path))
    assert isinstance(parsed, Rejected)
    assert parsed.name == "my-env-"
    assert parsed.reason.startswith("my env!.yaml: Unable to parse. Invalid YAML: ")
    assert "line" in parsed.reason


def test_an_invalid_spec_keeps_its_declared_name_when_usable(tmp_path: Path) -> None:
    path = tmp_path / "x.yml"
    path.write_text("name: declared\ndependencies: 7\n")
    parsed = parse_watched(read_watched(path))
    assert isinstance(parsed, Rejected) and parsed.name == "declared"
    assert "dependencies" in parsed.reason
    path.write_text("name: bad/name\ndependencies: []\n")
    parsed = parse_watched(read_watched(path))
    assert isinstance(parsed, Rejected) and parsed.name == "x"


def test_nul_bytes_and_huge_files_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "nul.yml"
    path.write_bytes(b"name: a\x00b\ndependencies: []\n")
    parsed = parse_watched(read_watched(path))
    assert isinstance(parsed, Rejected) and "NUL" in parsed.reason
    huge = tmp_path / "huge.yml"
    huge.write_text(VALID + "# " + "x" * MAX_SPECIFICATION_BYTES + "\n")
    file = read_watched(huge)
    assert len(file.text) == MAX_SPECIFICATION_BYTES + 1  # read only just past the limit
    parsed = parse_watched(file)
    assert isinstance(parsed, Rejected) and "limit" in parsed.reason


def test_fallback_names_are_valid_and_bounded() -> None:
    assert fallback_name(Path("/d/ok-name_1.yml")) == "ok-name_1"
    assert fallback_name(Path("/d/" + "é" * 300 + ".yml")) == "-" * 255
    assert fallback_name(Path("/d/a b.yml")) == "a-b"
