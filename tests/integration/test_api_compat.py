"""conda-store behaviours its clients rely on at the edges of the API: the ``default`` namespace
of a fresh server, the trailing-slash redirect for every method on every route, and names
longer than conda-store's 255-character columns refused before anything is written."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from fastapi import FastAPI

from services.api.app import create_app
from services.api.startup import ensure_namespace
from shared.eventstore import EventStore
from shared.settings import Settings
from tests.fixtures.api import ApiHarness, api, api_settings, seed_env  # noqa: F401
from tests.harness.fixtures_stack import Stack

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
QUERY = "page=2&search=a%2Fb"


# --- first start ------------------------------------------------------------------------------


async def _serve_lifespan(app: FastAPI, started: asyncio.Event, stop: asyncio.Event) -> None:
    async with app.router.lifespan_context(app):
        started.set()
        await stop.wait()


async def test_fresh_servers_starting_together_create_default_namespace_once(
    stack: Stack, settings: Settings, event_store: EventStore, tmp_path: Path
) -> None:
    """Four API processes start at once on an empty log, each with its own connections."""
    apps = [
        create_app(api_settings(tmp_path, settings).model_copy(update={"enable_ui": False}))
        for _ in range(4)
    ]
    stop = asyncio.Event()
    started = [asyncio.Event() for _ in apps]
    tasks = [
        asyncio.create_task(_serve_lifespan(app, s, stop))
        for app, s in zip(apps, started, strict=True)
    ]
    try:
        await asyncio.wait_for(asyncio.gather(*(s.wait() for s in started)), 30)
        await stack.projected()
        created = [
            e
            for e in await event_store.read_all(types=["NamespaceCreated"])
            if e.data["namespace"] == "default"
        ]
        assert len(created) == 1, created
        transport = httpx.ASGITransport(app=apps[-1])
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            listed = (await client.get("/api/v1/namespace/")).json()
            assert [n["name"] for n in listed["data"]] == ["default"]
            one = await client.get("/api/v1/namespace/default/")
            assert one.status_code == 200, one.text
            assert one.json()["data"]["name"] == "default"
    finally:
        stop.set()
        await asyncio.gather(*tasks)

    # the start-up step itself, raced by eight processes' connections at once
    stores = [await EventStore.connect(settings.database_url or "") for _ in range(8)]
    try:
        made = await asyncio.gather(*(ensure_namespace(s, "raced") for s in stores))
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    assert made.count(True) == 1, made
    assert len(await event_store.read_stream("namespace-raced")) == 1

    # a restart finds the default namespace and appends nothing
    before = await event_store.last_position()
    again = asyncio.Event()
    stop = asyncio.Event()
    task = asyncio.create_task(_serve_lifespan(apps[0], again, stop))
    await asyncio.wait_for(again.wait(), 30)
    stop.set()
    await task
    assert await event_store.last_position() == before


# --- trailing slashes ------------------------------------------------------------------------


def api_routes(app: FastAPI) -> dict[str, set[str]]:
    """Every API path of the app's route table (as its OpenAPI document lists them) with the
    methods declared on it."""
    return {
        path: {method.upper() for method in operations}
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/")
    }


async def seeded_routes(h: ApiHarness) -> dict[str, set[str]]:
    """The API routes of the harness's app, with ns1/env1 and builds 1 and 2 in place."""
    await seed_env(h, "ns1", "env1", 1, 2)
    await h.projected()
    return api_routes(h.client._transport.app)  # type: ignore[attr-defined]


def concrete(template: str) -> str:
    """A request path for a route template: ids are 1, names are names seeded by the test."""
    values = {"build_id": "1", "namespace": "ns1", "name": "env1", "environment": "env1"}
    return re.sub(r"\{(\w+)(?::\w+)?\}", lambda m: values.get(m.group(1), "x"), template)


async def test_every_method_on_every_route_redirects_to_the_slash_form(
    api: ApiHarness,  # noqa: F811
) -> None:
    routes = await seeded_routes(api)
    slashed = {p: m for p, m in routes.items() if p.endswith("/")}
    assert len(slashed) > 20  # the table really came from the app
    for template, declared in sorted(slashed.items()):
        path = concrete(template)
        for method in METHODS:
            response = await api.client.request(method, f"{path[:-1]}?{QUERY}", headers=api.admin())
            where = f"{method} {template}"
            assert response.status_code == 307, (where, response.status_code, response.text)
            target = urlsplit(response.headers["location"])
            assert (target.path, target.query) == (path, QUERY), where
            if method not in declared:
                # conda-store redirects first, then the slash form answers 405
                response = await api.client.request(method, path, headers=api.admin())
                assert response.status_code == 405, (where, response.text)


async def test_routes_declared_without_slash_answer_as_declared(
    api: ApiHarness,  # noqa: F811
) -> None:
    routes = await seeded_routes(api)
    bare = {p: m for p, m in routes.items() if not p.endswith("/")}
    # conda-store's no-slash routes (reference §1.3)
    assert {
        "/api/v1/namespace/{namespace}/metadata",
        "/api/v1/namespace/{namespace}/roles",
        "/api/v1/namespace/{namespace}/role",
        "/api/v1/build/{build_id}/conda-lock.yml",
        "/api/v1/build/{build_id}/conda-lock.yaml",
    } <= set(bare)
    bodies: dict[str, Any] = {"PUT": {}, "POST": {}, "DELETE": None}
    for template, declared in sorted(bare.items()):
        path = concrete(template)
        for method in sorted(declared - {"HEAD"}):
            response = await api.client.request(
                method,
                path,
                params={"other_namespace": "ns1"},
                json=bodies.get(method),
                headers=api.admin(),
            )
            where = f"{method} {template}"
            assert response.status_code != 405, (where, response.text)
            if response.status_code == 307:  # the lockfile's own redirect to storage
                assert urlsplit(response.headers["location"]).path != path + "/", where
            assert "Not Found" not in response.text, where  # not the unknown-path fallback
            toggled = await api.client.request(method, path + "/", headers=api.admin())
            assert toggled.status_code == 307, (where, toggled.text)
            assert urlsplit(toggled.headers["location"]).path == path


# --- names over 255 characters ---------------------------------------------------------------


def spec_named(name: str) -> str:
    return f"name: {name}\nchannels: [conda-forge]\ndependencies: [python]\n"


async def test_names_over_255_characters_are_refused_before_anything_is_written(
    api: ApiHarness,  # noqa: F811
) -> None:
    await seed_env(api, "ns1", "env1", 1, 2)
    await api.projected()
    admin = api.admin()
    long_ns, huge_ns, long_env = "n" * 256, "n" * 8000, "e" * 256
    lockfile = (
        '{"version": 1, "package": [], "metadata": {"content_hash": {"linux-64": "x"}, '
        '"channels": [], "platforms": ["linux-64"], "sources": []}}'
    )
    requests: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", f"/api/v1/namespace/{long_ns}/", {}),
        ("POST", f"/api/v1/namespace/{huge_ns}/", {}),
        ("PUT", f"/api/v1/namespace/{huge_ns}/", {"json": {"metadata": {"a": 1}}}),
        ("PUT", f"/api/v1/namespace/{huge_ns}/metadata", {"json": {"a": 1}}),
        ("GET", f"/api/v1/namespace/{huge_ns}/", {}),
        ("PUT", f"/api/v1/setting/{huge_ns}/", {"json": {"conda_default_channels": ["x"]}}),
        ("PUT", f"/api/v1/setting/ns1/{long_env}/", {"json": {"conda_default_channels": ["x"]}}),
        ("PUT", f"/api/v1/environment/ns1/{long_env}/", {"json": {"description": "d"}}),
        ("POST", "/api/v1/specification/", {"json": {"specification": spec_named(long_env)}}),
        (
            "POST",
            "/api/v1/specification/",
            {"json": {"namespace": huge_ns, "specification": spec_named("fine")}},
        ),
        (
            "POST",
            "/api/v1/specification/",
            {
                "json": {
                    "namespace": "ns1",
                    "is_lockfile": True,
                    "environment_name": long_env,
                    "specification": lockfile,
                }
            },
        ),
        ("POST", "/api/v1/token/", {"json": {"primary_namespace": huge_ns}}),
    ]
    before = await api.store.last_position()
    for method, url, kwargs in requests:
        response = await asyncio.wait_for(
            api.client.request(method, url, headers=admin, **kwargs), 10
        )
        where = f"{method} {url[:60]}"
        assert response.status_code == 400, (where, response.status_code, response.text[:300])
        message = response.json()["message"]
        assert "255" in message and "characters" in message, (where, message)
        assert len(message) < 300, message  # names the problem without echoing the name
    assert await api.store.last_position() == before

    # 255 characters are still a valid name
    ok = await api.client.post(f"/api/v1/namespace/{'n' * 255}/", headers=admin)
    assert ok.status_code == 200, ok.text
