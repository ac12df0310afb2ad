"""The visitor's base URL from proxy headers, prefixes and configured names (pure logic)."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import unquote

import pytest

from shared.public_url import (
    PublicBase,
    PublicUrlMiddleware,
    forwarded_base,
    normalize_prefix,
    parse_external_url,
    raw_route_path,
    registry_host,
    split_host,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [("", ""), ("/", ""), ("/conda-store", "/conda-store"), ("conda-store/", "/conda-store"),
     ("/a/b/", "/a/b")],
)  # fmt: skip
def test_prefixes_are_normalized(value: str, expected: str) -> None:
    assert normalize_prefix(value) == expected


@pytest.mark.parametrize("value", ["/a b", "/a//b", "/x?y=1", "/<script>", "/a#b"])
def test_prefixes_that_are_not_paths_are_refused(value: str) -> None:
    with pytest.raises(ValueError, match="invalid URL prefix"):
        normalize_prefix(value)


def test_the_request_itself_without_a_proxy() -> None:
    base, prefix = forwarded_base("http", "server:8080", {}, "")
    assert base == PublicBase("http", "server:8080", "") and prefix is None
    assert base.url("/api/v1/") == "http://server:8080/api/v1/"


def test_the_client_most_proxy_values_win() -> None:
    headers = {
        "x-forwarded-proto": "https, http",
        "x-forwarded-host": "conda.example.org, internal:8080",
        "x-forwarded-prefix": "/tools/conda-store/",
    }
    base, prefix = forwarded_base("http", "10.0.0.5:8080", headers, "")
    assert base == PublicBase("https", "conda.example.org", "/tools/conda-store")
    assert prefix == "/tools/conda-store"


def test_a_separate_port_header_completes_a_host_without_one() -> None:
    base, _ = forwarded_base("http", "internal", {"x-forwarded-port": "8443"}, "")
    assert base.host == "internal:8443"
    https, _ = forwarded_base(
        "http", "h", {"x-forwarded-proto": "https", "x-forwarded-port": "443"}, ""
    )
    assert https.url() == "https://h/"
    kept, _ = forwarded_base("http", "h:1", {"x-forwarded-port": "2"}, "")
    assert kept.host == "h:1"


def test_an_empty_prefix_header_is_said_and_invalid_values_are_ignored() -> None:
    _, prefix = forwarded_base("http", "h", {"x-forwarded-prefix": ""}, "/root")
    assert prefix == ""
    headers = {
        "x-forwarded-proto": "gopher",
        "x-forwarded-host": 'evil"><script>',
        "x-forwarded-prefix": "/a b",
        "x-forwarded-port": "eighty",
    }
    base, prefix = forwarded_base("http", "server:8080", headers, "/root")
    assert base == PublicBase("http", "server:8080", "/root") and prefix is None


def test_ipv6_hosts_keep_their_brackets() -> None:
    assert split_host("[::1]:8080") == ("[::1]", "8080")
    assert split_host("[::1]") == ("[::1]", None)
    assert split_host("host") == ("host", None)
    base, _ = forwarded_base("http", "[::1]:8080", {}, "")
    assert base.hostname == "[::1]"


def test_registry_name_is_the_visitors_host_with_the_registry_port() -> None:
    base = PublicBase("https", "conda.example.org:8443", "/conda-store")
    assert registry_host(base, 5000, None) == "conda.example.org:5000"
    assert registry_host(base, 5000, "https://registry.example.org/") == "registry.example.org"


def test_the_external_url_takes_the_prefix_unless_it_has_it() -> None:
    assert parse_external_url("https://cs.example.org/", "") == PublicBase(
        "https", "cs.example.org", ""
    )
    assert parse_external_url("https://cs.example.org", "/conda-store").prefix == "/conda-store"
    assert parse_external_url("https://h/conda-store/", "/conda-store").prefix == "/conda-store"
    with pytest.raises(ValueError, match="EXTERNAL_URL"):
        parse_external_url("cs.example.org:8080", "")


def rewritten(raw: bytes, url_prefix: str = "", headers: dict[str, str] | None = None) -> Any:
    """The scope routes see for a request uvicorn parsed from ``raw`` (path decoded,
    ``raw_path`` as sent), after :class:`PublicUrlMiddleware`."""
    seen: list[dict[str, Any]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope)

    scope = {
        "type": "http",
        "scheme": "http",
        "root_path": "",
        "path": unquote(raw.decode()),
        "raw_path": raw,
        "query_string": b"",
        "headers": [(b"host", b"server:8080")]
        + [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    asyncio.run(PublicUrlMiddleware(app, url_prefix)(scope, None, None))
    return seen[0]


@pytest.mark.parametrize(
    ("raw", "url_prefix", "headers"),
    [
        (b"/environment/ns/a%3Fb%2Fc/", "", {}),
        (b"/conda-store/environment/ns/a%3Fb%2Fc/", "/conda-store", {}),
        (b"/environment/ns/a%3Fb%2Fc/", "", {"x-forwarded-prefix": "/tools"}),
        (b"/environment/ns/a%3Fb%2Fc/", "/conda-store", {"x-forwarded-prefix": "/tools/cs"}),
    ],
)
def test_a_proxy_forwards_the_path_below_the_prefix_still_encoded(
    raw: bytes, url_prefix: str, headers: dict[str, str]
) -> None:
    scope = rewritten(raw, url_prefix, headers)
    assert scope["path"].startswith(scope["root_path"] + "/")  # what the next hop must not get
    assert raw_route_path(scope) == "/environment/ns/a%3Fb%2Fc/"


def test_without_a_raw_path_the_decoded_one_is_encoded_again() -> None:
    scope = {"path": "/cs/environment/ns/a?b#c/", "root_path": "/cs"}
    assert raw_route_path(scope) == "/environment/ns/a%3Fb%23c/"
