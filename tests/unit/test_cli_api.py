"""The client's HTTP layer against a fake transport: paging, filters, auth modes, errors."""

from __future__ import annotations

import json

import httpx
import pytest

from client.api import Api
from client.errors import CondaStoreError


def _paged(total: int, requests: list[httpx.URL]):  # type: ignore[no-untyped-def]
    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request.url)
        page = int(request.url.params.get("page", 1))
        size = min(int(request.url.params.get("size", 100)), 100)
        start = (page - 1) * size
        data = [{"id": i} for i in range(start, min(start + size, total))]
        return httpx.Response(
            200, json={"status": "ok", "data": data, "page": page, "size": size, "count": total}
        )

    return handler


@pytest.mark.parametrize("total", [0, 1, 100, 101, 250])
def test_paginate_fetches_every_page_once(total: int) -> None:
    seen: list[httpx.URL] = []
    api = Api("http://h", transport=httpx.MockTransport(_paged(total, seen)))
    items = api.paginate("/environment/", {"status": "COMPLETED", "packages": ["numpy", "six"]})
    assert [i["id"] for i in items] == list(range(total))
    assert len(seen) == max(1, -(-total // 100))
    for url in seen:
        assert url.path == "/api/v1/environment/"  # the slash is before the query
        assert url.params.get_list("packages") == ["numpy", "six"]
        assert url.params["status"] == "COMPLETED"
        assert not str(url).endswith("/")


def test_unset_filters_are_not_sent() -> None:
    seen: list[httpx.URL] = []
    api = Api("http://h/prefix/", transport=httpx.MockTransport(_paged(1, seen)))
    api.paginate("/build/", {"status": None, "artifact": None, "packages": []})
    assert str(seen[0]) == "http://h/prefix/api/v1/build/?page=1&size=100"


def test_errors_carry_the_servers_message() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/environment/a/b/"):
            return httpx.Response(
                404, json={"status": "error", "message": "environment does not exist"}
            )
        return httpx.Response(
            422, json={"detail": [{"loc": ["query", "status"], "msg": "Input should be 'QUEUED'"}]}
        )

    api = Api("http://h", transport=httpx.MockTransport(handler))
    with pytest.raises(CondaStoreError, match="environment does not exist"):
        api.get_data("/environment/a/b/")
    with pytest.raises(CondaStoreError, match="status: Input should be 'QUEUED'"):
        api.get_data("/build/", {"status": "x"})


def test_token_auth_sends_a_bearer_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"status": "ok", "data": {}})

    api = Api(
        "http://h",
        "token",
        env={"CONDA_STORE_TOKEN": "tok"},
        transport=httpx.MockTransport(handler),
    )
    api.get_data("/permission/")
    assert seen[0].headers["authorization"] == "Bearer tok"
    with pytest.raises(CondaStoreError, match="CONDA_STORE_TOKEN"):
        Api("http://h", "token", env={})


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8123", "localhost:8123", "[::1]:8123", "store.example"]
)
def test_basic_auth_logs_in_and_keeps_the_cookie_on_any_host(host: str) -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.path == "/login/":
            assert json.loads(request.content) == {"username": "u", "password": "p"}
            return httpx.Response(
                200,
                json={"status": "ok", "data": {"redirect_url": "/"}},
                headers={
                    "set-cookie": "conda-store-auth=JWT; HttpOnly; Max-Age=86400; Path=/; "
                    "SameSite=strict"
                },
            )
        return httpx.Response(200, json={"status": "ok", "data": {"authenticated": True}})

    env = {"CONDA_STORE_USERNAME": "u", "CONDA_STORE_PASSWORD": "p"}
    api = Api(f"http://{host}", "basic", env=env, transport=httpx.MockTransport(handler))
    api.get_data("/permission/")
    api.get_data("/namespace/")
    assert [r.url.path for r in seen] == ["/login/", "/api/v1/permission/", "/api/v1/namespace/"]
    assert seen[1].headers.get("cookie") == "conda-store-auth=JWT"
    assert seen[2].headers.get("cookie") == "conda-store-auth=JWT"


def test_redirects_to_storage_do_not_leak_the_token() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.url.host == "h":
            return httpx.Response(307, headers={"location": "http://s3.example/bucket/key?sig=1"})
        return httpx.Response(200, content=b"payload")

    api = Api(
        "http://h",
        "token",
        env={"CONDA_STORE_TOKEN": "tok"},
        transport=httpx.MockTransport(handler),
    )
    with api.stream("/build/1/archive/") as response:
        assert response.read() == b"payload"
    assert seen[0].headers["authorization"] == "Bearer tok"
    assert "authorization" not in seen[1].headers
