"""URI parsing and resolution of the ``conda-store`` client (pure; the API is faked)."""

from __future__ import annotations

from typing import Any

import pytest

from client.errors import CondaStoreError
from client.uri import BuildUri, parse_uri, resolve_build_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42", BuildUri(build_id=42)),
        ("default/numpy", BuildUri(None, "default", "numpy")),
        ("default/numpy:7", BuildUri(7, "default", "numpy")),
        ("my-ns/env.v1_2:13", BuildUri(13, "my-ns", "env.v1_2")),
        (" 5 ", BuildUri(build_id=5)),
    ],
)
def test_parse_accepts_the_three_forms(text: str, expected: BuildUri) -> None:
    assert parse_uri(text) == expected


@pytest.mark.parametrize("text", ["", "abc", "a/b/c", "a/b:x", "a/:1", "/b", "a/b:", "-1"])
def test_parse_rejects_anything_else(text: str) -> None:
    with pytest.raises(CondaStoreError, match="unable to parse URI"):
        parse_uri(text)


class FakeApi:
    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    def get_data(self, path: str, params: Any = None) -> Any:
        self.calls.append(path)
        return self.answers[path]


def test_build_id_needs_no_request() -> None:
    api = FakeApi({})
    assert resolve_build_id(api, parse_uri("9")) == 9  # type: ignore[arg-type]
    assert api.calls == []


def test_environment_uses_its_current_build() -> None:
    api = FakeApi({"/environment/ns/env/": {"id": 3, "current_build_id": 11}})
    assert resolve_build_id(api, parse_uri("ns/env")) == 11  # type: ignore[arg-type]


def test_environment_without_build_is_an_error() -> None:
    api = FakeApi({"/environment/ns/env/": {"id": 3, "current_build_id": None}})
    with pytest.raises(CondaStoreError, match="no current build"):
        resolve_build_id(api, parse_uri("ns/env"))  # type: ignore[arg-type]


def test_explicit_build_must_belong_to_the_environment() -> None:
    api = FakeApi({"/environment/ns/env/": {"id": 3}, "/build/8/": {"id": 8, "environment_id": 4}})
    with pytest.raises(CondaStoreError, match="build 8 does not belong to environment ns/env"):
        resolve_build_id(api, parse_uri("ns/env:8"))  # type: ignore[arg-type]
    api.answers["/build/8/"] = {"id": 8, "environment_id": 3}
    assert resolve_build_id(api, parse_uri("ns/env:8")) == 8  # type: ignore[arg-type]
