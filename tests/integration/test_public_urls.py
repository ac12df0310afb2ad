"""URLs the API hands out are the visitor's: built from ``Host`` and ``X-Forwarded-*`` when no
external URL is configured, and mounted under ``CONDA_STORE_URL_PREFIX`` (conda-store's
``url_prefix``). Also: the anonymous remote solve obeys the channel policy before fetching.

The real stack, a reverse proxy and real clients are in ``test_deployment.py``; these run the
real API app in-process against the ``stack`` fixture's database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx

from services.api.app import create_app
from shared.events import ImagePushed
from tests.channels.server import ChannelServer, ServedChannel
from tests.fixtures.api import ApiHarness, api, seed_conda_store_like  # noqa: F401

COLLEAGUE = {"Host": "colleague.example:8080"}
PROXIED = {
    "Host": "10.0.0.5:8080",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "conda.example.org",
    "X-Forwarded-Prefix": "/tools/conda-store",
}


async def _world(api: ApiHarness) -> str:  # noqa: F811
    """The samples' world; build 4 (namespace2/name4) completed with an image. Its key."""
    await seed_conda_store_like(api)
    await api.append(
        "build-4", ImagePushed(build_id=4, manifest_digest="sha256:" + "0" * 64, manifest_key="m/4")
    )
    await api.projected()
    row = await api.store.pool.fetchrow("SELECT build_key FROM builds WHERE id = 4")
    return row["build_key"]


@asynccontextmanager
async def _app(api: ApiHarness, **settings: object):  # noqa: F811
    """Another gateway on the same database, with other settings."""
    app = create_app(api.state.settings.model_copy(update=settings), store=api.store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://cs.test") as client:
            yield client


async def test_links_follow_the_host_and_the_proxy_headers(api: ApiHarness) -> None:  # noqa: F811
    key = await _world(api)
    admin = api.admin()
    port = api.state.settings.registry_port

    logs = await api.client.get("/api/v1/build/4/logs/", headers={**admin, **COLLEAGUE})
    assert logs.status_code == 307
    # storage links are paths, as conda-store's: they resolve on the visitor's own origin
    assert logs.headers["location"].startswith("/storage/builds/4/logs.txt?expires=")
    archive = await api.client.get("/api/v1/build/4/archive/", headers={**admin, **PROXIED})
    assert archive.headers["location"].startswith(
        "/tools/conda-store/storage/builds/4/archive.tar.gz?"
    )
    # the link is served (a stripping proxy sends the path without its prefix)
    link = urlsplit(archive.headers["location"])
    stripped = link.path.removeprefix("/tools/conda-store")
    fetched = await api.client.get(f"{stripped}?{link.query}", headers=PROXIED)
    assert fetched.status_code == 200 and fetched.content.startswith(b"\x1f\x8b")

    docker = await api.client.get("/api/v1/build/4/docker/", headers={**admin, **COLLEAGUE})
    assert docker.text == f"colleague.example:{port}/namespace2/name4:{key}"
    docker = await api.client.get("/api/v1/build/4/docker/", headers={**admin, **PROXIED})
    assert docker.text == f"conda.example.org:{port}/namespace2/name4:{key}"

    login = await api.client.post(
        "/login/", json={"username": "u", "password": "password"}, headers=PROXIED
    )
    assert login.json()["data"]["redirect_url"] == "https://conda.example.org/tools/conda-store/"
    slash = await api.client.get("/api/v1/build/4?x=1", headers=COLLEAGUE)
    assert slash.status_code == 307
    assert slash.headers["location"] == "http://colleague.example:8080/api/v1/build/4/?x=1"


async def test_configured_names_win(api: ApiHarness) -> None:  # noqa: F811
    key = await _world(api)
    headers = {**api.admin(), **PROXIED}
    async with _app(
        api, external_url="https://cs.example.org/", registry_external_url="registry.example.org"
    ) as client:
        logs = await client.get("/api/v1/build/4/logs/", headers=headers)
        assert logs.headers["location"].startswith("/storage/builds/4/")
        docker = await client.get("/api/v1/build/4/docker/", headers=headers)
        assert docker.text == f"registry.example.org/namespace2/name4:{key}"


async def test_url_prefix_mounts_every_route(api: ApiHarness) -> None:  # noqa: F811
    await _world(api)
    base = "http://cs.test/conda-store"
    async with _app(api, url_prefix="/conda-store") as client:
        client.headers.update(api.admin())
        version = await client.get("/conda-store/api/v1/")
        assert version.status_code == 200 and version.json()["data"]["version"]
        for path in ("/", "/conda-store"):
            into = await client.get(path)
            assert (into.status_code, into.headers.get("location")) == (307, f"{base}/"), path
        slash = await client.get("/conda-store/api/v1/build/4")
        assert slash.headers["location"] == f"{base}/api/v1/build/4/"
        unknown = await client.get("/conda-store/api/v1/nope/")
        assert unknown.status_code == 404

        archive = await client.get("/conda-store/api/v1/build/4/archive/")
        assert archive.status_code == 307
        location = archive.headers["location"]
        assert location.startswith("/conda-store/storage/builds/4/archive.tar.gz?")
        fetched = await client.get(location)
        assert fetched.status_code == 200 and fetched.content.startswith(b"\x1f\x8b")
        # a proxy that strips the prefix and says so gets the same links
        logs = await client.get(
            "/api/v1/build/4/logs/", headers={"X-Forwarded-Prefix": "/conda-store"}
        )
        assert logs.headers["location"].startswith("/conda-store/storage/builds/4/logs.txt?")

        login = await client.post(
            "/conda-store/login/", json={"username": "u", "password": "password"}
        )
        assert login.json()["data"]["redirect_url"] == f"{base}/"
        logout = await client.post("/conda-store/logout/")
        assert (logout.status_code, logout.headers["location"]) == (303, f"{base}/")
        docs = await client.get("/conda-store/docs")
        assert docs.status_code == 200 and "/conda-store/openapi.json" in docs.text
        assert (await client.get("/conda-store/openapi.json")).status_code == 200

    oauth = dict(
        oauth_provider="generic",
        oauth_client_id="cs",
        oauth_client_secret="s",
        oauth_authorize_url="https://idp.example/authorize",
        oauth_access_token_url="https://idp.example/token",
        oauth_user_data_url="https://idp.example/user",
    )
    async with _app(api, **oauth, url_prefix="/conda-store") as client:
        proxy = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "conda.example.org"}
        start = await client.get("/conda-store/login/", headers=proxy)
        assert start.status_code == 307
        query = parse_qs(urlsplit(start.headers["location"]).query)
        assert query["redirect_uri"] == ["https://conda.example.org/conda-store/oauth_callback/"]
        start = await client.get("/conda-store/login/", headers=COLLEAGUE)
        query = parse_qs(urlsplit(start.headers["location"]).query)
        assert query["redirect_uri"] == [
            "http://colleague.example:8080/conda-store/oauth_callback/"
        ]


@asynccontextmanager
async def _remote_solver(api: ApiHarness) -> AsyncIterator[None]:  # noqa: F811
    """The solver's remote-solve responder, as the solver service runs it."""
    from services.solver.remote import serve
    from services.solver.resolve import Resolver
    from shared.bus.jetstream import connect_nats

    settings = api.state.settings
    nc = await connect_nats(settings.nats_url, "test-remote-solve")
    stop = asyncio.Event()
    serving = asyncio.create_task(
        serve(nc, Resolver.from_settings(settings, api.store.pool), settings, stop)
    )
    try:
        yield
    finally:
        stop.set()
        await serving
        await nc.close()


async def test_remote_solve_refuses_disallowed_channels_before_any_fetch(
    api: ApiHarness,  # noqa: F811
    tiny_channel: ServedChannel,
    tmp_path: Path,
) -> None:
    allowed = await api.client.put(
        "/api/v1/setting/",
        json={"conda_allowed_channels": [tiny_channel.url]},
        headers=api.admin(),
    )
    assert allowed.status_code == 200, allowed.text
    # the same packages behind another address, which records every request it gets
    with ChannelServer(tiny_channel.path) as elsewhere, ChannelServer(tmp_path) as internal:
        async with _remote_solver(api):
            for url in (elsewhere.url, f"{internal.url}/latest/meta-data"):
                for name in ("channel", "channels"):  # conda-store's client sends `channels`
                    r = await api.client.get(
                        "/api/v1/specification/", params={name: url, "conda": "bar"}
                    )
                    assert r.status_code == 400, r.text
                    assert r.json() == {
                        "status": "error",
                        "message": f"Conda channels {{'{url}'}} not allowed in specification",
                    }
            ok = await api.client.get(
                "/api/v1/specification/", params={"channels": tiny_channel.url, "conda": "bar"}
            )
            assert ok.status_code == 200, ok.text
        assert elsewhere.requested == [] and internal.requested == []
    rows = {row["name"]: row for row in ok.json()["solve"]}
    assert rows["bar"]["version"] == "2.0"
    assert all(isinstance(row["size"], int) and "channel_id" in row for row in rows.values())
