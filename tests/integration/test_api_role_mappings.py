"""Role mappings stored in namespaces take effect at request time: v1 (``PUT /namespace/``
``role_mappings``, applied to callers whose primary namespace holds them) and v2 (``POST
/namespace/{ns}/role``, granting ``{ns}/*`` to callers of ``other_namespace``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx

from services.api.app import create_app
from tests.fixtures.api import ApiHarness, api, seed_env  # noqa: F401


@asynccontextmanager
async def gateway(api: ApiHarness, version: int) -> AsyncIterator[httpx.AsyncClient]:  # noqa: F811
    """A second gateway on the same store, configured for ``role_mappings_version``."""
    settings = api.state.settings.model_copy(update={"role_mappings_version": version})
    app = create_app(settings, store=api.store)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            yield c


async def visible(client: httpx.AsyncClient, headers: dict[str, str]) -> set[str]:
    r = await client.get("/api/v1/environment/?size=100", headers=headers)
    assert r.status_code == 200
    return {f"{e['namespace']['name']}/{e['name']}" for e in r.json()["data"]}


async def test_v1_and_v2_role_mappings_grant_access_at_request_time(api: ApiHarness) -> None:  # noqa: F811
    await seed_env(api, "team", "e1", 1, 2)
    await seed_env(api, "bob", "e1", 3, 4)
    await seed_env(api, "carol", "e1", 5, 6)
    await api.store.pool.execute("SELECT setval('build_id_seq', 6)")
    await api.projected()
    admin = api.admin()
    bob = api.auth("bob")  # a login token: no bindings of its own
    carol = api.auth("carol")
    assert "team/e1" not in await visible(api.client, bob)
    assert (await api.client.get("/api/v1/environment/team/e1/", headers=bob)).status_code == 403

    # v1: the mapping lives in bob's own namespace and applies to bob-primary callers
    r = await api.client.put(
        "/api/v1/namespace/bob/", json={"role_mappings": {"team/*": ["editor"]}}, headers=admin
    )
    assert r.status_code == 200, r.text
    await api.projected()
    assert "team/e1" in await visible(api.client, bob)
    assert (await api.client.get("/api/v1/environment/team/e1/", headers=bob)).status_code == 200
    # editor may rebuild there, but not delete
    rebuild = await api.client.put("/api/v1/build/1/", headers=bob)
    assert rebuild.status_code == 200, rebuild.text
    deleted = await api.client.delete("/api/v1/environment/team/e1/", headers=bob)
    assert deleted.status_code == 403
    assert "team/e1" not in await visible(api.client, carol)

    # v2: team grants carol's namespace viewer; only a v2 gateway reads these rows
    r = await api.client.post(
        "/api/v1/namespace/team/role",
        json={"other_namespace": "carol", "role": "viewer"},
        headers=admin,
    )
    assert r.status_code == 200, r.text
    await api.projected()
    async with gateway(api, version=2) as v2:
        assert "team/e1" in await visible(v2, carol)
        ok = await v2.get("/api/v1/environment/team/e1/", headers=carol)
        assert ok.status_code == 200
        refused = await v2.put("/api/v1/build/1/", headers=carol)
        assert refused.status_code == 403  # viewer only
        assert "team/e1" not in await visible(v2, bob)  # v1 rows do not count under v2
    assert "team/e1" not in await visible(api.client, carol)  # nor v2 rows under v1

    # removing the v2 mapping takes the access away again
    r = await api.client.request(
        "DELETE", "/api/v1/namespace/team/role", json={"other_namespace": "carol"}, headers=admin
    )
    assert r.status_code == 200, r.text
    await api.projected()
    async with gateway(api, version=2) as v2:
        assert "team/e1" not in await visible(v2, carol)
