"""The edge rules: what text and integers a request may carry, checked once for every service.

The OpenAPI walk keeps it structural: a route added later with a bare ``int`` parameter or body
field fails here, before a fuzzer finds its 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from services.api.app import create_app as create_api
from services.registry.app import create_app as create_registry
from services.ui.app import create_app as create_ui
from shared.http_edge import body_problem, target_problem
from shared.settings import Settings
from shared.wire import INT64_MAX, INT64_MIN, find_bad_text, is_row_id, text_problem


def integer_schemas(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "integer":
            yield where, node
        for key, value in node.items():
            yield from integer_schemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from integer_schemas(value, f"{where}[{index}]")


def openapi_documents() -> dict[str, dict[str, Any]]:
    settings = Settings(database_url="postgresql://unused")
    return {
        "api": create_api(settings).openapi(),
        "ui": create_ui(settings).openapi(),
        "registry": create_registry(None, None, None, settings.max_body_bytes).openapi(),  # type: ignore[arg-type]
    }


@pytest.mark.parametrize("service", ["api", "ui", "registry"])
def test_every_integer_a_route_accepts_fits_64_bits(service: str) -> None:
    document = openapi_documents()[service]
    for answer_only in ("ValidationError", "HTTPValidationError"):  # FastAPI's 422 body
        document.get("components", {}).get("schemas", {}).pop(answer_only, None)
    found = list(integer_schemas(document))
    # some bounds come out as floats (2**63 - 1 rounds to 2.0**63): compare as floats
    unbounded = [
        where
        for where, schema in found
        if not float(INT64_MIN) <= schema.get("minimum", -float("inf"))
        or not schema.get("maximum", float("inf")) <= float(INT64_MAX)
    ]
    assert found, "no integer parameters found: the walk is broken"
    assert not unbounded, f"integers without 64-bit bounds (use shared.wire.Int64): {unbounded}"


def test_text_problems() -> None:
    assert text_problem("fine ünïcode") is None
    assert "NUL" in (text_problem("a\x00b") or "")
    assert "surrogate" in (text_problem("a\ud800") or "")
    assert find_bad_text({"a": ["ok", {"b": "x\x00"}]}) == ("a[1].b", text_problem("\x00"))
    where, _ = find_bad_text({"meta": {"k\x00": 1}}) or ("", "")
    assert where.startswith("meta.<key")
    assert find_bad_text({"a": [1, None, True, "fine"]}) is None


def test_row_ids_are_32_bit_integers() -> None:
    assert is_row_id(1) and is_row_id(2**31 - 1) and is_row_id(-(2**31))
    assert not is_row_id(2**31) and not is_row_id(True) and not is_row_id("1")


def scope(path: str = "/", query: bytes = b"") -> dict[str, Any]:
    return {"type": "http", "path": path, "query_string": query}


def test_target_problem_names_the_query_parameter_or_the_path() -> None:
    assert target_problem(scope("/api/v1/environment/", b"search=ok&page=2")) is None
    assert "query parameter 'search'" in (target_problem(scope("/", b"page=1&search=a%00")) or "")
    assert "path" in (target_problem(scope("/api/v1/namespace/a\x00b/")) or "")


def test_body_problem_reads_json_only_when_an_escape_could_hide_bad_text() -> None:
    assert body_problem(b'{"description": "fine"}') is None
    assert body_problem(b'{"description": "a literal \\\\u0000 is text"}') is None
    assert "body field 'metadata.k'" in (body_problem(b'{"metadata": {"k": "v\\u0000"}}') or "")
    assert "surrogate" in (body_problem(b'{"d": "\\ud800"}') or "")
    assert "request body" in (body_problem(b"raw\x00bytes") or "")
    assert body_problem(b"{not json \\u0000") is None  # the route answers its own 4xx
