"""Smoke: the app starts on the stack and answers its version."""

from __future__ import annotations

from tests.fixtures.api import ApiHarness, api, seed_conda_store_like  # noqa: F401


async def test_version_and_seeded_lists(api: ApiHarness) -> None:  # noqa: F811
    r = await api.client.get("/api/v1/")
    assert r.json() == {"status": "ok", "data": {"version": "2025.2.2"}, "message": None}
    await seed_conda_store_like(api)
    r = await api.client.get("/api/v1/environment/")
    assert r.status_code == 200, r.text
    assert [e["name"] for e in r.json()["data"]] == ["name1", "name2"]
