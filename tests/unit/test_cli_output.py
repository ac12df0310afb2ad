"""Output shaping of the ``conda-store`` client: stable JSON rows, sizes, tables (pure)."""

from __future__ import annotations

import json

import pytest

from client.output import (
    build_row,
    dumps,
    emit,
    environment_row,
    humanize_size,
    namespace_row,
    package_row,
)


def test_json_is_sorted_indented_and_ends_with_a_newline() -> None:
    text = dumps([{"b": 1, "a": None}])
    assert text == '[\n  {\n    "a": null,\n    "b": 1\n  }\n]\n'


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0.0B"), (None, "0.0B"), (1023, "1023.0B"), (1536, "1.5KiB"), (5 * 1024**3, "5.0GiB")],
)
def test_sizes_are_humanized(size: int | None, text: str) -> None:
    assert humanize_size(size) == text


def test_rows_keep_only_the_documented_keys() -> None:
    env = {
        "id": 4,
        "namespace": {"id": 2, "name": "ns", "metadata_": {}},
        "name": "env",
        "current_build_id": 9,
        "current_build": None,
        "description": None,
        "extra": 1,
    }
    assert environment_row(env) == {
        "id": 4,
        "namespace": "ns",
        "namespace_id": 2,
        "name": "env",
        "current_build_id": 9,
        "description": None,
    }
    assert namespace_row({"id": 1, "name": "default", "x": 2}) == {"id": 1, "name": "default"}
    build = build_row({"id": 3, "status": "FAILED", "status_info": "conflict", "packages": None})
    assert set(build) == {
        "id",
        "environment_id",
        "status",
        "status_info",
        "size",
        "scheduled_on",
        "started_on",
        "ended_on",
    }
    assert build["status_info"] == "conflict"


def test_package_rows_accept_nested_or_flat_channels() -> None:
    flat = package_row({"name": "numpy", "version": "2.0", "build": "py_0", "channel": "c"})
    nested = package_row(
        {"name": "numpy", "version": "2.0", "build": "py_0", "channel": {"id": 1, "name": "c"}}
    )
    assert flat == nested
    assert flat["manager"] == "conda"


def test_emit_json_and_table(capsys: pytest.CaptureFixture[str]) -> None:
    rows = [{"id": 1, "name": "default"}, {"id": 2, "name": "a-very-long-namespace-name"}]
    emit(rows, "json", {"Id": "id", "Name": "name"})
    assert json.loads(capsys.readouterr().out) == rows
    emit(rows, "table", {"Id": "id", "Name": "name"})
    out = capsys.readouterr().out
    assert "Id" in out and "Name" in out and "a-very-long-namespace-name" in out
