"""RBAC matrix: every protected route x {anonymous, viewer, editor, admin} x {own, other}
namespace. The expectation comes from the reference's role table (written out here, not from
the code under test): a caller lacking a permission gets 403 and writes no event; a caller
holding it never gets 403. List routes always answer 200 and show only visible namespaces."""

from __future__ import annotations

from typing import Any

from tests.fixtures.api import ApiHarness, api, seed_env  # noqa: F401

VIEWER = {"environment::read", "namespace::read", "namespace-role-mapping::read"}
EDITOR = VIEWER | {
    "build::cancel",
    "environment:create",
    "environment::update",
    "environment::solve",
    "setting::read",
}
ADMIN = EDITOR | {
    "environment::delete",
    "build::delete",
    "namespace::create",
    "namespace::update",
    "namespace::delete",
    "namespace-role-mapping::create",
    "namespace-role-mapping::update",
    "namespace-role-mapping::delete",
    "setting::update",
}
ROLES = {"anonymous": VIEWER, "viewer": VIEWER, "editor": EDITOR, "admin": ADMIN}
# namespace -> (completed build id, queued build id) of its environment "e1"
WORLD = {"default": (1, 2), "alice": (3, 4), "bob": (5, 6)}

SPEC = "name: e2\nchannels: [conda-forge]\ndependencies: [python]\n"
NS_RM = {"namespace::read", "namespace-role-mapping::read"}

# (method, path, json body, permissions required); {ns}, {b} (completed), {q} (queued).
# Destructive routes come last so earlier cells see the seeded world.
ROUTES: list[tuple[str, str, Any, set[str]]] = [
    ("GET", "/api/v1/namespace/{ns}/", None, {"namespace::read"}),
    ("GET", "/api/v1/namespace/{ns}/roles", None, NS_RM),
    ("GET", "/api/v1/namespace/{ns}/role?other_namespace=default", None, NS_RM),
    ("GET", "/api/v1/environment/{ns}/e1/", None, {"environment::read"}),
    ("GET", "/api/v1/environment/{ns}/e1/lockfile/", None, {"environment::read"}),
    ("GET", "/api/v1/environment/{ns}/e1/conda-lock.yml", None, {"environment::read"}),
    ("GET", "/api/v1/build/{b}/", None, {"environment::read"}),
    ("GET", "/api/v1/build/{b}/packages/", None, {"environment::read"}),
    ("GET", "/api/v1/build/{b}/logs/", None, {"environment::read"}),
    ("GET", "/api/v1/build/{b}/yaml/", None, {"environment::read"}),
    ("GET", "/api/v1/build/{b}/lockfile/", None, {"environment::read"}),
    ("GET", "/api/v1/build/{b}/conda-lock.yaml", None, {"environment::read"}),
    ("GET", "/api/v1/build/{b}/archive/", None, {"environment::read"}),
    ("GET", "/api/v1/build/{b}/sbom/", None, {"environment::read"}),
    ("GET", "/api/v1/build/{b}/installer/", None, {"environment::read"}),
    ("GET", "/api/v1/build/{b}/docker/", None, {"environment::read"}),
    ("GET", "/api/v1/setting/{ns}/", None, {"setting::read"}),
    ("GET", "/api/v1/setting/{ns}/e1/", None, {"setting::read"}),
    ("PUT", "/api/v1/environment/{ns}/e1/", {"description": "d"}, {"environment::update"}),
    ("PUT", "/api/v1/environment/{ns}/e1/", {"build_id": "{b}"}, {"environment::update"}),
    (
        "POST",
        "/api/v1/specification/",
        {"namespace": "{ns}", "specification": SPEC},
        {"environment:create"},
    ),
    ("PUT", "/api/v1/build/{b}/", None, {"environment::update"}),
    ("PUT", "/api/v1/build/{q}/cancel/", None, {"build::cancel"}),
    (
        "PUT",
        "/api/v1/namespace/{ns}/",
        {"metadata": {"k": 1}},
        {"namespace::update", "namespace-role-mapping::create", "namespace-role-mapping::delete"},
    ),
    ("PUT", "/api/v1/namespace/{ns}/metadata", {"k": 2}, {"namespace::update"}),
    (
        "POST",
        "/api/v1/namespace/{ns}/role",
        {"other_namespace": "default", "role": "viewer"},
        {"namespace-role-mapping::create"},
    ),
    (
        "PUT",
        "/api/v1/namespace/{ns}/role",
        {"other_namespace": "default", "role": "editor"},
        {"namespace-role-mapping::update"},
    ),
    (
        "DELETE",
        "/api/v1/namespace/{ns}/role",
        {"other_namespace": "default"},
        {"namespace-role-mapping::delete"},
    ),
    (
        "DELETE",
        "/api/v1/namespace/{ns}/roles",
        None,
        {"namespace::read", "namespace-role-mapping::delete"},
    ),
    (
        "PUT",
        "/api/v1/setting/{ns}/",
        {"conda_default_channels": ["conda-forge"]},
        {"setting::update"},
    ),
    (
        "PUT",
        "/api/v1/setting/{ns}/e1/",
        {"conda_default_channels": ["conda-forge"]},
        {"setting::update"},
    ),
    ("POST", "/api/v1/namespace/{ns}/", None, {"namespace::create"}),
    ("DELETE", "/api/v1/build/{b}/", None, {"build::delete"}),
    ("DELETE", "/api/v1/environment/{ns}/e1/", None, {"environment::delete"}),
    ("DELETE", "/api/v1/namespace/{ns}/", None, {"namespace::delete"}),
]
LISTS = [
    "/api/v1/namespace/",
    "/api/v1/environment/",
    "/api/v2/environment/",
    "/api/v1/build/",
    "/api/v1/usage/",
    "/api/v1/permission/",
    "/api/v1/channel/",
    "/api/v1/package/",
    "/api/v1/events/",
]


def fill(value: Any, ns: str) -> Any:
    b, q = WORLD[ns]
    if isinstance(value, str):
        text = value.replace("{ns}", ns).replace("{b}", str(b)).replace("{q}", str(q))
        return int(text) if text.isdigit() and value != text else text
    if isinstance(value, dict):
        return {k: fill(v, ns) for k, v in value.items()}
    return value


def caller_headers(harness: ApiHarness, role: str) -> dict[str, str]:
    if role == "anonymous":
        return {}
    return harness.auth("alice", {"alice/*": [role]})


async def test_rbac_matrix(api: ApiHarness) -> None:  # noqa: F811
    for ns, (b, q) in WORLD.items():
        await seed_env(api, ns, "e1", b, q)
    await api.store.pool.execute("SELECT setval('build_id_seq', 6)")
    await api.projected()
    failures: list[str] = []
    cells = 0
    for role in ROLES:
        headers = caller_headers(api, role)
        for scope in ("own", "other"):
            ns = ("default" if role == "anonymous" else "alice") if scope == "own" else "bob"
            granted = ROLES[role] if scope == "own" else set()
            for method, path, body, required in ROUTES:
                url = fill(path, ns)
                before = await api.store.last_position()
                r = await api.client.request(method, url, json=fill(body, ns), headers=headers)
                cells += 1
                allowed = required <= granted
                where = f"{role}/{scope} {method} {url} -> {r.status_code} {r.text[:120]}"
                if allowed and r.status_code == 403:
                    failures.append(f"denied but allowed: {where}")
                if not allowed:
                    if r.json() != {"status": "error", "message": "request not authorized"}:
                        failures.append(f"allowed but should be 403: {where}")
                    if await api.store.last_position() != before:
                        failures.append(f"403 wrote an event: {where}")
            for path in LISTS:
                r = await api.client.get(path, headers=headers)
                cells += 1
                if r.status_code != 200:
                    failures.append(f"list {role} {path} -> {r.status_code}")
                    continue
                if path == "/api/v1/namespace/":
                    names = {n["name"] for n in r.json()["data"]}
                    if "bob" in names:
                        failures.append(f"{role} sees namespace bob")
    assert cells > 250
    assert not failures, "\n".join(failures)
