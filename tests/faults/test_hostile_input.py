"""Hostile input against the real stack (``conda-store-server up``): integers past 64 bits, NUL
characters anywhere a string goes, forged tokens carrying them, and chunked bodies over the
limit. Every answer is a clear 4xx (never a 5xx, never a Postgres error) and writes no event.

The API, the ui service and the registry are each probed on their own port, and the API and the
ui again under a URL prefix (``CONDA_STORE_URL_PREFIX``, or a stripping proxy's
``X-Forwarded-Prefix``), where both proxies (API to ui, ui to API) must forward the path below
the prefix, still percent-encoded.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jwt as pyjwt
import pytest

from shared.auth_store import jwt_secret
from shared.eventstore import EventStore
from shared.spec import MAX_DESCRIPTION_CHARS
from tests.harness.embedded_stack import EmbeddedStack

HUGE = "9" * 30  # past 64 bits
BIG = str(2**63)  # one past int64
NUL = "\x00"
LONG_DESCRIPTION = "d" * (MAX_DESCRIPTION_CHARS + 1)
PREFIX = "/conda-store"
Case = tuple[str, str, str, dict[str, Any]]


def event_count(stack: EmbeddedStack) -> int:
    async def count() -> int:
        store = await EventStore.connect(stack.database_url)
        try:
            return await store.last_position()
        finally:
            await store.close()

    return asyncio.run(count())


def forged_token(stack: EmbeddedStack, claims: dict[str, Any]) -> str:
    """A token signed with the stack's own secret, carrying content no login should mint."""
    secret = jwt_secret("", stack.data_dir)
    return pyjwt.encode({"exp": 4102444800, **claims}, secret, algorithm="HS256")


def wait_quiet(stack: EmbeddedStack) -> None:
    """Until no service has appended anything for 2 s (the image builder comes last)."""
    last, still = event_count(stack), 0
    while still < 10:
        time.sleep(0.2)
        now = event_count(stack)
        still = still + 1 if now == last else 0
        last = now


@pytest.fixture(scope="module")
def seeded(embedded_stack: EmbeddedStack, tiny_channel: Any) -> Iterator[dict[str, str]]:
    """An admin's headers, with a namespace and a built environment to aim at."""
    headers = {"Authorization": f"Bearer {embedded_stack.login_token('admin')}"}
    spec = f"name: target\nchannels: [{tiny_channel.url}]\ndependencies: [libfoo]\n"
    embedded_stack.build(headers, "hostile", spec)
    wait_quiet(embedded_stack)
    yield headers


def api_cases(stack: EmbeddedStack, admin: dict[str, str]) -> list[Case]:
    spec_with_nul = f"name: a{NUL}b\ndependencies: [python]\n"
    nul_cursor = base64.b64encode(
        json.dumps({"last_id": 1, "last_value": {"namespace": NUL}}).encode()
    ).decode()
    wrong_cursor = base64.b64encode(
        json.dumps({"last_id": "x", "last_value": {"namespace": 5}}).encode()
    ).decode()
    huge_cursor = base64.b64encode(json.dumps({"last_id": 2**70}).encode()).decode()
    nul_bearer = forged_token(
        stack, {"primary_namespace": f"a{NUL}b", "role_bindings": {"*/*": ["admin"]}}
    )
    a = {"headers": admin}
    env = "/api/v1/environment/hostile/target/"
    return [
        # integers past 64 bits, in queries, paths and bodies
        ("env page", "GET", f"/api/v1/environment/?page={HUGE}", a),
        ("env size", "GET", f"/api/v1/environment/?size={HUGE}", a),
        ("env page int64+1", "GET", f"/api/v1/environment/?page={BIG}", a),
        ("build page", "GET", f"/api/v1/build/?page={HUGE}", a),
        ("build environment_id", "GET", f"/api/v1/build/?environment_id={HUGE}", a),
        ("namespace page", "GET", f"/api/v1/namespace/?page={HUGE}", a),
        ("package page", "GET", f"/api/v1/package/?page={HUGE}", a),
        ("channel size", "GET", f"/api/v1/channel/?size={HUGE}", a),
        ("events after", "GET", f"/api/v1/events/?after={HUGE}", a),
        ("events limit", "GET", f"/api/v1/events/?limit={HUGE}", a),
        ("v2 limit", "GET", f"/api/v2/environment/?limit={HUGE}", a),
        ("v2 cursor huge id", "GET", f"/api/v2/environment/?cursor={huge_cursor}", a),
        ("v2 cursor wrong types", "GET", f"/api/v2/environment/?cursor={wrong_cursor}", a),
        ("build path", "GET", f"/api/v1/build/{HUGE}/", a),
        ("build packages path", "GET", f"/api/v1/build/{HUGE}/packages/", a),
        ("build logs path", "GET", f"/api/v1/build/{HUGE}/logs/", a),
        ("build cancel path", "PUT", f"/api/v1/build/{HUGE}/cancel/", a),
        ("env build_id body", "PUT", env, {"json": {"build_id": int(HUGE)}, **a}),
        ("token expiration", "POST", "/api/v1/token/", {"json": {"expiration": int(HUGE)}, **a}),
        # NUL characters: search filters, names, roles, metadata, descriptions, tokens, specs
        ("env search", "GET", "/api/v1/environment/?search=a%00b", a),
        ("env search anonymous", "GET", "/api/v1/environment/?search=a%00b", {}),
        ("env name filter", "GET", "/api/v1/environment/?name=a%00b", a),
        ("env namespace filter", "GET", "/api/v1/environment/?namespace=a%00b", a),
        ("env packages filter", "GET", "/api/v1/environment/?packages=a%00b", a),
        ("env jwt filter", "GET", "/api/v1/environment/?jwt=a%00b", a),
        ("v2 search", "GET", "/api/v2/environment/?search=%00", a),
        ("v2 cursor with nul", "GET", f"/api/v2/environment/?cursor={nul_cursor}", a),
        ("build name filter", "GET", "/api/v1/build/?name=%00", a),
        ("build packages filter", "GET", "/api/v1/build/?packages=%00", a),
        ("package search", "GET", "/api/v1/package/?search=a%00b", a),
        ("package build", "GET", "/api/v1/package/?build=%00", a),
        ("build packages search", "GET", "/api/v1/build/1/packages/?search=%00", a),
        ("sort_by", "GET", "/api/v1/environment/?sort_by=%00", a),
        ("namespace path", "GET", "/api/v1/namespace/a%00b/", a),
        ("namespace create", "POST", "/api/v1/namespace/a%00b/", a),
        ("environment path", "GET", "/api/v1/environment/hostile/a%00b/", a),
        ("environment delete", "DELETE", "/api/v1/environment/hostile/a%00b/", a),
        ("setting path", "GET", "/api/v1/setting/a%00b/", a),
        ("v2 role other", "GET", "/api/v1/namespace/hostile/role?other_namespace=%00", a),
        (
            "role mapping key",
            "PUT",
            "/api/v1/namespace/hostile/",
            {"json": {"role_mappings": {f"a{NUL}/*": ["viewer"]}}, **a},
        ),
        (
            "role mapping role",
            "PUT",
            "/api/v1/namespace/hostile/",
            {"json": {"role_mappings": {"a/*": [f"viewer{NUL}"]}}, **a},
        ),
        (
            "v2 role create",
            "POST",
            "/api/v1/namespace/hostile/role",
            {"json": {"other_namespace": f"x{NUL}", "role": "viewer"}, **a},
        ),
        (
            "metadata value",
            "PUT",
            "/api/v1/namespace/hostile/",
            {"json": {"metadata": {"k": f"v{NUL}"}}, **a},
        ),
        (
            "metadata key",
            "PUT",
            "/api/v1/namespace/hostile/metadata",
            {"json": {f"k{NUL}": "v"}, **a},
        ),
        ("description", "PUT", env, {"json": {"description": f"d{NUL}"}, **a}),
        ("long description", "PUT", env, {"json": {"description": LONG_DESCRIPTION}, **a}),
        (
            "setting value",
            "PUT",
            "/api/v1/setting/hostile/",
            {"json": {"conda_default_channels": [f"c{NUL}"]}, **a},
        ),
        (
            "token namespace",
            "POST",
            "/api/v1/token/",
            {"json": {"primary_namespace": f"a{NUL}"}, **a},
        ),
        (
            "token binding",
            "POST",
            "/api/v1/token/",
            {"json": {"role_bindings": {f"a{NUL}/*": ["viewer"]}}, **a},
        ),
        (
            "spec text",
            "POST",
            "/api/v1/specification/",
            {"json": {"namespace": "hostile", "specification": spec_with_nul}, **a},
        ),
        (
            "spec dependency",
            "POST",
            "/api/v1/specification/",
            {
                "json": {
                    "namespace": "hostile",
                    "specification": f"name: ok\ndependencies: [py{NUL}thon]\n",
                },
                **a,
            },
        ),
        (
            "spec namespace",
            "POST",
            "/api/v1/specification/",
            {"json": {"namespace": f"h{NUL}", "specification": "name: x\n"}, **a},
        ),
        (
            "lockfile environment name",
            "POST",
            "/api/v1/specification/",
            {
                "json": {
                    "namespace": "hostile",
                    "specification": "version: 1\nmetadata: {}\npackage: []\n",
                    "is_lockfile": True,
                    "environment_name": f"e{NUL}",
                },
                **a,
            },
        ),
        (
            "solve channel",
            "GET",
            "/api/v1/specification/?channel=%00&conda=python",
            {},
        ),
        (
            "login name",
            "POST",
            "/login/",
            {"json": {"username": f"a{NUL}b", "password": "password"}},
        ),
        (
            "raw nul in body",
            "POST",
            "/login/",
            {"content": b'{"username": "a\x00b", "password": "password"}'},
        ),
        # a token (cookie or bearer) with bad content is anonymous, never a 500
        ("forged bearer", "POST", "/api/v1/namespace/x/", {"headers": bearer(nul_bearer)}),
        (
            "forged cookie",
            "POST",
            "/api/v1/namespace/x/",
            {"cookies": {"conda-store-auth": nul_bearer}},
        ),
    ]


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def check(client: httpx.Client, cases: list[Case]) -> list[str]:
    failures = []
    for name, method, url, kwargs in cases:
        kwargs = dict(kwargs)
        cookies = kwargs.pop("cookies", None)
        client.cookies.clear()
        if cookies:
            client.cookies.update(cookies)
        try:
            r = client.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            failures.append(f"{name}: {type(exc).__name__} {exc}")
            continue
        if not 400 <= r.status_code < 500 or not message_of(r):
            failures.append(f"{name}: {r.status_code} {r.text[:200]!r}")
    return failures


def message_of(response: httpx.Response) -> str:
    """The error text a person reads: conda-store's message, FastAPI's detail, OCI's errors,
    or a page's text."""
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()
    if isinstance(body, dict):
        errors = body.get("errors") or [{}]
        return str(body.get("message") or body.get("detail") or errors[0].get("message") or "")
    return ""


def test_api_answers_hostile_input_with_4xx_and_writes_nothing(
    embedded_stack: EmbeddedStack, seeded: dict[str, str]
) -> None:
    cases = api_cases(embedded_stack, seeded)
    before = event_count(embedded_stack)
    with httpx.Client(base_url=embedded_stack.api_url, timeout=60) as client:
        failures = check(client, cases)
    after = event_count(embedded_stack)
    assert not failures, "\n".join(failures)
    assert after == before, f"hostile input wrote {after - before} event(s)"


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/environment/?page={2**62}&size=100",  # offset past int64
        f"/api/v1/build/?environment_id={2**40}",  # ids are 32-bit columns
        f"/api/v1/build/?page={2**63 - 1}",
        f"/api/v1/package/?page={2**62}&size=100",
    ],
)
def test_valid_but_extreme_integers_answer_an_empty_page(
    embedded_stack: EmbeddedStack, seeded: dict[str, str], path: str
) -> None:
    r = httpx.get(embedded_stack.api_url + path, headers=seeded, timeout=30)
    assert r.status_code == 200, r.text
    assert r.json()["data"] == []


def test_login_with_nul_is_refused_and_a_forged_cookie_is_anonymous(
    embedded_stack: EmbeddedStack,
) -> None:
    with httpx.Client(base_url=embedded_stack.api_url, timeout=30) as client:
        r = client.post("/login/", json={"username": f"a{NUL}b", "password": "password"})
        assert r.status_code == 400, r.text
        assert "NUL" in r.json()["message"]
        assert "conda-store-auth" not in r.cookies
        forged = forged_token(embedded_stack, {"primary_namespace": f"a{NUL}b"})
        client.cookies.set("conda-store-auth", forged)
        for path in ("/api/v1/permission/", "/api/v1/environment/", "/api/v1/usage/"):
            r = client.get(path)
            assert r.status_code == 200, (path, r.text)
        assert client.get("/api/v1/permission/").json()["data"]["authenticated"] is False


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    yield b'{"specification": "'
    sent = 0
    while sent < total:
        yield b"a" * size
        sent += size
    yield b'"}'


def chunked_post_failures(stack: EmbeddedStack, headers: dict[str, str], prefix: str) -> list[str]:
    """A body over the limit, sent chunked, to a route of the API and one of the ui: each must
    answer 413."""
    failures = []
    for base, path in (
        (stack.api_url, "/api/v1/specification/"),
        (stack.ui_url, "/create/validate"),
    ):
        with httpx.Client(base_url=base + prefix, headers=headers, timeout=60) as client:
            # a generator body goes out chunked, with no Content-Length
            r = client.post(
                path, content=chunks(6 * 1024 * 1024), headers={"Content-Type": "a/json"}
            )
        if r.status_code != 413 or "too large" not in message_of(r):
            failures.append(f"{base}{prefix}{path}: {r.status_code} {r.text[:200]!r}")
    return failures


def test_a_chunked_body_over_the_limit_gets_413(
    embedded_stack: EmbeddedStack, seeded: dict[str, str]
) -> None:
    before = event_count(embedded_stack)
    failures = chunked_post_failures(embedded_stack, seeded, "")
    assert not failures, "\n".join(failures)
    assert event_count(embedded_stack) == before


def ui_cases() -> list[Case]:
    return [
        ("build page path", "GET", f"/build/{HUGE}/", {}),
        ("home page number", "GET", f"/?page={HUGE}", {}),
        ("home search nul", "GET", "/?search=a%00b", {}),
        ("environment nul", "GET", "/environment/hostile/a%00b/", {}),
        ("environment question mark", "GET", "/environment/hostile/a%3Fb/", {}),
        ("environment dot dot", "GET", "/environment/..%2F..%2Fapi/x/", {}),
        ("create nul", "GET", "/create/?namespace=a%00&environment=b", {}),
        ("build search nul", "GET", "/build/1/?search=%00", {}),
        ("login next nul", "GET", "/login/?next=/%00", {}),
        ("validate nul", "POST", "/create/validate", {"json": {"text": f"name: a{NUL}"}}),
        (
            "validate namespace nul",
            "POST",
            "/create/validate",
            {"json": {"text": "name: a\n", "namespace": f"a{NUL}"}},
        ),
    ]


def test_ui_answers_hostile_input_with_4xx(
    embedded_stack: EmbeddedStack, seeded: dict[str, str]
) -> None:
    failures = []
    for base in (embedded_stack.ui_url, embedded_stack.api_url):  # direct, and via the gateway
        with httpx.Client(base_url=base, headers=seeded, timeout=60) as client:
            failures += [f"{base}: {f}" for f in check(client, ui_cases())]
    assert not failures, "\n".join(failures)


def test_registry_answers_hostile_input_with_4xx(
    embedded_stack: EmbeddedStack, seeded: dict[str, str]
) -> None:
    token = seeded["Authorization"].removeprefix("Bearer ")
    cases: list[Case] = [
        ("catalog n", "GET", f"/v2/_catalog?n={HUGE}&last=%00", {}),
        ("catalog last nul", "GET", "/v2/_catalog?last=a%00", {}),
        ("tags n", "GET", f"/v2/hostile/target/tags/list?n={HUGE}", {}),
        ("name nul", "GET", "/v2/host%00ile/target/manifests/latest", {}),
        ("reference nul", "GET", "/v2/hostile/target/manifests/lat%00est", {}),
        ("tags nul", "GET", "/v2/hostile/t%00/tags/list", {}),
        ("blob nul", "GET", "/v2/hostile/target/blobs/sha256:%00", {}),
        ("dynamic nul", "GET", "/v2/conda-store-dynamic/py%00thon/manifests/latest", {}),
    ]
    with httpx.Client(
        base_url=embedded_stack.registry_url, auth=("user", token), timeout=60
    ) as client:
        failures = check(client, cases)
    assert not failures, "\n".join(failures)


@pytest.fixture(scope="module")
def prefixed() -> Iterator[tuple[EmbeddedStack, dict[str, str]]]:
    """A stack of its own mounted under ``PREFIX``, with an admin's headers."""
    with EmbeddedStack.start({"CONDA_STORE_URL_PREFIX": PREFIX}) as stack:
        admin = bearer(stack.login_token("admin"))
        wait_quiet(stack)
        yield stack, admin


def test_hostile_input_under_a_url_prefix_gets_4xx_and_writes_nothing(
    prefixed: tuple[EmbeddedStack, dict[str, str]],
) -> None:
    stack, admin = prefixed
    api, ui = stack.api_url + PREFIX, stack.ui_url + PREFIX
    # refused as sent, not redirected into the prefix with the NUL still in it
    outside: list[Case] = [
        ("root nul", "GET", "/?search=%00", {}),
        ("bare prefix nul", "GET", f"{PREFIX}?search=%00", {}),
    ]
    runs = [
        (api, api_cases(stack, admin), {}),
        (api, ui_cases(), admin),  # the gateway's proxy to the ui
        (ui, ui_cases(), admin),
        (stack.api_url, outside, {}),
        (stack.ui_url, outside, {}),
    ]
    before = event_count(stack)
    failures = []
    for base, cases, headers in runs:
        with httpx.Client(base_url=base, headers=headers, timeout=60) as client:
            failures += [f"{base}: {f}" for f in check(client, cases)]
    failures += chunked_post_failures(stack, admin, PREFIX)
    after = event_count(stack)
    assert not failures, "\n".join(failures)
    assert after == before, f"hostile input wrote {after - before} event(s)"


def test_both_proxies_forward_the_path_below_a_stripping_proxys_prefix(
    embedded_stack: EmbeddedStack, seeded: dict[str, str]
) -> None:
    """A proxy that strips ``/tools`` says so in ``X-Forwarded-Prefix``; the page and the API
    answer on the path it sends, whichever service takes the request first."""
    tools = {**seeded, "X-Forwarded-Prefix": "/tools"}
    page = httpx.get(f"{embedded_stack.api_url}/environment/hostile/target/", headers=tools)
    assert page.status_code == 200, page.text[:300]
    assert 'href="/tools/' in page.text
    data = httpx.get(f"{embedded_stack.ui_url}/api/v1/environment/hostile/target/", headers=tools)
    assert data.status_code == 200, data.text[:300]
    assert data.json()["data"]["name"] == "target"
