"""A catalogue of bad inputs: each gets a 4xx with a message and writes no event."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import jwt as pyjwt

from tests.fixtures.api import ApiHarness, api, seed_env  # noqa: F401

OK_SPEC = "name: fine\nchannels: [conda-forge]\ndependencies: [python]\n"
LOCKFILE_V2 = "version: 2\nmetadata: {}\npackage: []\n"


def spec(text: str, **extra: Any) -> dict[str, Any]:
    return {"namespace": "team", "specification": text, **extra}


def cases(h: ApiHarness) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(name, method, url, request kwargs); admin on everything unless the case is about auth."""
    admin = h.admin()
    viewer = h.auth("viewer", {"team/*": ["viewer"]})
    expired = h.token("team", {"*/*": ["admin"]}, lifetime=timedelta(seconds=-10))
    foreign = pyjwt.encode(
        {"exp": 4102444800, "primary_namespace": "x", "role_bindings": {"*/*": ["admin"]}},
        "another-secret-that-is-long-enough-for-hs256",
    )
    post_spec = "/api/v1/specification/"
    return [
        ("invalid yaml", "POST", post_spec, {"json": spec("name: [unclosed"), "headers": admin}),
        ("yaml is a list", "POST", post_spec, {"json": spec("- a\n- b"), "headers": admin}),
        ("yaml is a scalar", "POST", post_spec, {"json": spec("42"), "headers": admin}),
        ("empty spec", "POST", post_spec, {"json": spec(""), "headers": admin}),
        ("name with space", "POST", post_spec, {"json": spec("name: 'a b'"), "headers": admin}),
        ("name traversal", "POST", post_spec, {"json": spec("name: ../etc"), "headers": admin}),
        ("name with slash", "POST", post_spec, {"json": spec("name: a/b"), "headers": admin}),
        ("name missing", "POST", post_spec, {"json": spec("dependencies: [x]"), "headers": admin}),
        (
            "dependencies not a list",
            "POST",
            post_spec,
            {"json": spec("name: x\ndependencies: 5"), "headers": admin},
        ),
        (
            "dependency int",
            "POST",
            post_spec,
            {"json": spec("name: x\ndependencies: [1]"), "headers": admin},
        ),
        (
            "bad matchspec",
            "POST",
            post_spec,
            {"json": spec("name: x\ndependencies: ['numpy >>=< 1']"), "headers": admin},
        ),
        (
            "bad pip option",
            "POST",
            post_spec,
            {"json": spec("name: x\ndependencies:\n  - pip: ['--foo bar']"), "headers": admin},
        ),
        (
            "channels not a list",
            "POST",
            post_spec,
            {"json": spec("name: x\nchannels: 5"), "headers": admin},
        ),
        (
            "channel not allowed",
            "POST",
            post_spec,
            {
                "json": spec("name: x\nchannels: [bioconda]\ndependencies: [python]"),
                "headers": admin,
            },
        ),
        (
            "specification missing",
            "POST",
            post_spec,
            {"json": {"namespace": "team"}, "headers": admin},
        ),
        (
            "specification wrong type",
            "POST",
            post_spec,
            {"json": {"specification": 5}, "headers": admin},
        ),
        ("body not json", "POST", post_spec, {"content": b"{nope", "headers": admin}),
        (
            "huge body",
            "POST",
            post_spec,
            {"json": spec("name: x\n#" + "a" * (6 * 1024 * 1024)), "headers": admin},
        ),
        (
            "lockfile garbage",
            "POST",
            post_spec,
            {"json": spec("just text", is_lockfile=True, environment_name="x"), "headers": admin},
        ),
        (
            "lockfile version 2",
            "POST",
            post_spec,
            {"json": spec(LOCKFILE_V2, is_lockfile=True, environment_name="x"), "headers": admin},
        ),
        (
            "namespace traversal",
            "POST",
            post_spec,
            {"json": {"namespace": "../x", "specification": OK_SPEC}, "headers": admin},
        ),
        ("namespace bad name", "POST", "/api/v1/namespace/bad%20name/", {"headers": admin}),
        ("namespace encoded slash", "POST", "/api/v1/namespace/a%2Fb/", {"headers": admin}),
        ("namespace exists", "POST", "/api/v1/namespace/team/", {"headers": admin}),
        (
            "role mapping bad role",
            "PUT",
            "/api/v1/namespace/team/",
            {"json": {"role_mappings": {"x/*": ["superuser"]}}, "headers": admin},
        ),
        (
            "role mapping bad key",
            "PUT",
            "/api/v1/namespace/team/",
            {"json": {"role_mappings": {"bad key/*": ["viewer"]}}, "headers": admin},
        ),
        (
            "metadata not object",
            "PUT",
            "/api/v1/namespace/team/",
            {"json": {"metadata": [1, 2]}, "headers": admin},
        ),
        (
            "update missing namespace",
            "PUT",
            "/api/v1/namespace/nope/",
            {"json": {}, "headers": admin},
        ),
        (
            "metadata body list",
            "PUT",
            "/api/v1/namespace/team/metadata",
            {"json": [1], "headers": admin},
        ),
        (
            "v2 role other namespace missing",
            "POST",
            "/api/v1/namespace/team/role",
            {"json": {"other_namespace": "ghost", "role": "viewer"}, "headers": admin},
        ),
        (
            "v2 role bad role",
            "POST",
            "/api/v1/namespace/team/role",
            {"json": {"other_namespace": "default", "role": "superuser"}, "headers": admin},
        ),
        (
            "current build missing",
            "PUT",
            "/api/v1/environment/team/e1/",
            {"json": {"build_id": 999}, "headers": admin},
        ),
        (
            "current build not completed",
            "PUT",
            "/api/v1/environment/team/e1/",
            {"json": {"build_id": 2}, "headers": admin},
        ),
        (
            "current build of another env",
            "PUT",
            "/api/v1/environment/team/e1/",
            {"json": {"build_id": 3}, "headers": admin},
        ),
        (
            "build id not int",
            "PUT",
            "/api/v1/environment/team/e1/",
            {"json": {"build_id": "abc"}, "headers": admin},
        ),
        (
            "update missing env",
            "PUT",
            "/api/v1/environment/team/ghost/",
            {"json": {}, "headers": admin},
        ),
        ("delete missing env", "DELETE", "/api/v1/environment/team/ghost/", {"headers": admin}),
        ("delete queued build", "DELETE", "/api/v1/build/2/", {"headers": admin}),
        ("cancel finished build", "PUT", "/api/v1/build/1/cancel/", {"headers": admin}),
        ("rebuild missing build", "PUT", "/api/v1/build/999/", {"headers": admin}),
        ("build id not int", "GET", "/api/v1/build/abc/", {"headers": admin}),
        ("build id overflow", "GET", "/api/v1/build/99999999999/", {"headers": admin}),
        ("setting unknown key", "PUT", "/api/v1/setting/", {"json": {"nope": 1}, "headers": admin}),
        (
            "global setting at namespace level",
            "PUT",
            "/api/v1/setting/team/",
            {"json": {"conda_max_solve_time": 1}, "headers": admin},
        ),
        (
            "setting wrong type",
            "PUT",
            "/api/v1/setting/team/",
            {"json": {"conda_default_channels": 1}, "headers": admin},
        ),
        ("setting body list", "PUT", "/api/v1/setting/", {"json": [1], "headers": admin}),
        (
            "token wider than caller",
            "POST",
            "/api/v1/token/",
            {"json": {"role_bindings": {"*/*": ["admin"]}}, "headers": viewer},
        ),
        (
            "token outlives caller",
            "POST",
            "/api/v1/token/",
            {"json": {"expiration": "2199-01-01T00:00:00"}, "headers": viewer},
        ),
        (
            "token bad binding key",
            "POST",
            "/api/v1/token/",
            {"json": {"role_bindings": {"no slash!": ["viewer"]}}, "headers": admin},
        ),
        (
            "token bad expiration",
            "POST",
            "/api/v1/token/",
            {"json": {"expiration": "tomorrow"}, "headers": admin},
        ),
        ("bad status enum", "GET", "/api/v1/build/?status=NOPE", {"headers": admin}),
        ("bad v2 order", "GET", "/api/v2/environment/?order=foo", {"headers": admin}),
        ("bad v2 sort_by", "GET", "/api/v2/environment/?sort_by=foo", {"headers": admin}),
        ("bad v2 cursor", "GET", "/api/v2/environment/?cursor=!!!", {"headers": admin}),
        ("page not int", "GET", "/api/v1/namespace/?page=abc", {"headers": admin}),
        ("events limit 0", "GET", "/api/v1/events/?limit=0", {"headers": admin}),
        (
            "garbage bearer",
            "POST",
            post_spec,
            {"json": spec(OK_SPEC), "headers": {"Authorization": "Bearer garbage"}},
        ),
        (
            "expired token",
            "POST",
            post_spec,
            {"json": spec(OK_SPEC), "headers": {"Authorization": f"Bearer {expired}"}},
        ),
        (
            "token from another secret",
            "POST",
            post_spec,
            {"json": spec(OK_SPEC), "headers": {"Authorization": f"Bearer {foreign}"}},
        ),
        (
            "malformed basic",
            "POST",
            post_spec,
            {"json": spec(OK_SPEC), "headers": {"Authorization": "Basic %%%"}},
        ),
        (
            "basic without token",
            "POST",
            post_spec,
            {
                "json": spec(OK_SPEC),
                "headers": {"Authorization": "Basic " + base64.b64encode(b"user:pw").decode()},
            },
        ),
        (
            "login bad password",
            "POST",
            "/login/",
            {"json": {"username": "u", "password": "wrong"}},
        ),
        ("login not json", "POST", "/login/", {"content": b"username=u"}),
        (
            "storage bad signature",
            "GET",
            "/storage/builds/1/logs.txt?expires=4102444800&signature=00",
            {},
        ),
        (
            "storage traversal",
            "GET",
            "/storage/../../etc/passwd?expires=4102444800&signature=00",
            {},
        ),
    ]


async def test_bad_inputs_are_4xx_with_message_and_write_nothing(api: ApiHarness) -> None:  # noqa: F811
    await seed_env(api, "team", "e1", 1, 2)
    await seed_env(api, "other", "e1", 3, 4)
    await api.store.pool.execute("SELECT setval('build_id_seq', 4)")
    r = await api.client.put(
        "/api/v1/setting/team/",
        json={"conda_allowed_channels": ["conda-forge"]},
        headers=api.admin(),
    )
    assert r.status_code == 200, r.text
    await api.projected()
    catalogue = cases(api)
    assert len(catalogue) >= 40
    failures = []
    for name, method, url, kwargs in catalogue:
        before = await api.store.last_position()
        r = await api.client.request(method, url, **kwargs)
        after = await api.store.last_position()
        body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
        message = body.get("message") or body.get("detail")
        if not 400 <= r.status_code < 500 or not message:
            failures.append(f"{name}: {r.status_code} {r.text[:200]}")
        if after != before:
            failures.append(f"{name}: wrote {after - before} event(s)")
    assert not failures, "\n".join(failures)
