"""Contract: replay conda-store 2025.2.2's recorded requests (tests/fixtures/
conda_store_samples.json) against a server seeded with the same world, in the recorded order,
and compare status codes, redirect targets, error messages and body shapes (ids/times may
differ). The recording has no request bodies, so each write's body is given here."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from tests.fixtures.api import ApiHarness, api, seed_conda_store_like  # noqa: F401

SAMPLES = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "conda_store_samples.json").read_text()
)

SPEC_OK = "name: newenv\nchannels: [conda-forge]\ndependencies: [python]\n"
BODIES: dict[str, Any] = {
    "spec-post-unauth": {"namespace": "default", "specification": SPEC_OK},
    "token-post-unauth": {},
    "login-bad-password": {"username": "username", "password": "nope"},
    "login-ok": {"username": "username", "password": "password"},
    "setting-put-global": {"conda_max_solve_time": 100},
    "setting-put-ns-global-key": {"conda_max_solve_time": 100},
    "setting-put-bad-key": {"nope": 1},
    "setting-put-bad-type": {"conda_default_channels": 1},
    "token-post-auth": {},
    "token-post-narrow": {
        "primary_namespace": "default",
        "role_bindings": {"default/*": ["viewer"]},
    },
    "token-post-too-wide-exp": {"expiration": "2199-01-01T00:00:00"},
    "namespace-put": {"metadata": {"a": 1}, "role_mappings": {"default/*": ["viewer"]}},
    "namespace-put-metadata": {"a": 1},
    "ns-role-post": {"other_namespace": "default", "role": "editor"},
    "ns-role-put": {"other_namespace": "default", "role": "viewer"},
    "ns-role-delete": {"other_namespace": "default"},
    "spec-post-bad-yaml": {"specification": "name: [unclosed"},
    "spec-post-bad-name": {"specification": "name: 'bad name'\ndependencies: [python]"},
    "spec-post-bad-dep-type": {"specification": "name: x\ndependencies: [1]"},
    "spec-post-bad-pip": {"specification": "name: x\ndependencies:\n  - pip: ['--foo bar']"},
    "spec-post-ok": {"namespace": "default", "specification": SPEC_OK},
    "spec-post-same-again": {"namespace": "default", "specification": SPEC_OK},
    "env-put-build-not-completed": {"build_id": 5},
    "env-put-description": {"description": "hello"},
    "spec-post-recreate-deleted-env": {
        "namespace": "default",
        "specification": "name: name2\nchannels: [defaults]\ndependencies: [flask]\n",
    },
}

# Deliberate differences, each a conda-store bug or a transient state we do not reproduce.
DEVIATIONS = {
    "build-lockfile-legacy": "no legacy (v0.4) lockfiles: every lockfile is a stored artifact",
    "build-conda-lock-yaml": "same as build-lockfile-legacy",
    "env-lockfile": "conda-store answers 500 when a legacy lockfile exists anywhere; we redirect",
    "spec-post-lockfile-bad": "conda-store 500s on a bad lockfile version; we answer 400",
    "build-logs-unauth": "a QUEUED build's log streams live here instead of redirecting",
    "build-logs-auth": "same as build-logs-unauth",
    "env-list-after-recreate": "re-creating a deleted environment makes it visible again",
    "ns-recreate-after-delete": "namespace deletion completes at once, so the name is free again",
    "token-decoded-payload": "not a request",
    "build-archive": "404 until an archive exists; conda-store redirects to a missing file",
}
MESSAGE_VARIES = {"setting-put-bad-type"}  # pydantic's text carries its version in a URL
# our additions; clients ignore them
EXTENSION_KEYS = {"build_key", "deleted_on", "image", "conda_virtual_packages"}


def shape_diff(ours: Any, theirs: Any, path: str = "$") -> list[str]:
    """Differences in structure: dict keys, list element shapes, scalar kinds (None is wild)."""
    if ours is None or theirs is None:
        return []
    if isinstance(theirs, dict):
        if not isinstance(ours, dict):
            return [f"{path}: expected object, got {type(ours).__name__}"]
        if set(ours) - EXTENSION_KEYS != set(theirs):
            return [f"{path}: keys {sorted(ours)} != {sorted(theirs)}"]
        return [d for k in theirs for d in shape_diff(ours[k], theirs[k], f"{path}.{k}")]
    if isinstance(theirs, list):
        if not isinstance(ours, list):
            return [f"{path}: expected list"]
        if ours and theirs:
            return shape_diff(ours[0], theirs[0], f"{path}[0]")
        return []
    kinds = (bool, int, float, str)
    for kind in kinds:
        if isinstance(theirs, kind):
            return [] if isinstance(ours, kind) else [f"{path}: expected {kind.__name__}"]
    return []


async def test_recorded_samples_replay(api: ApiHarness) -> None:  # noqa: F811
    await seed_conda_store_like(api)
    client = api.client
    jwt = ""
    failures: list[str] = []
    replayed = 0
    for sample in SAMPLES:
        label = sample["label"]
        if label in DEVIATIONS:
            continue
        headers: dict[str, str] = {}
        if label == "permission-bearer":
            headers["Authorization"] = f"Bearer {jwt}"
        elif label == "permission-basic":
            headers["Authorization"] = "Basic " + base64.b64encode(f"u:{jwt}".encode()).decode()
        elif label == "permission-bad-bearer":
            headers["Authorization"] = "Bearer not-a-token"
        url = sample["url"].removeprefix("http://testserver")
        body = BODIES.get(label)
        response = await client.request(
            sample["method"], url, json=body if sample["method"] != "GET" else None, headers=headers
        )
        replayed += 1
        if label == "login-ok":
            jwt = response.cookies.get("conda-store-auth") or ""
            assert "HttpOnly" in response.headers["set-cookie"]
            assert "SameSite=strict" in response.headers["set-cookie"]
        problems = compare(label, sample, response)
        failures += [f"{label}: {p}" for p in problems]
    assert replayed >= 90
    assert not failures, "\n".join(failures)


def compare(label: str, sample: dict[str, Any], response: Any) -> list[str]:
    if response.status_code != sample["status"]:
        return [f"status {response.status_code} != {sample['status']}: {response.text[:300]}"]
    expected = sample["body"]
    if response.status_code in (303, 307):
        theirs = sample["headers"]["location"]
        ours = response.headers["location"]
        if theirs.startswith("/storage/"):
            return [] if ours.startswith("/storage/builds/") else [f"location {ours}"]
        return [] if ours == theirs else [f"location {ours} != {theirs}"]
    if label == "metrics":
        names = {line.split()[0] for line in response.text.splitlines()}
        wanted = {line.split()[0] for line in expected.splitlines()}
        return [] if wanted <= names else [f"metrics missing {wanted - names}"]
    if not isinstance(expected, dict):
        return []
    ours = response.json()
    if expected.get("status") == "error" and label not in MESSAGE_VARIES:
        if ours != expected:
            return [f"error body {ours} != {expected}"]
    for header in ("deprecation", "sunset"):
        if (
            header in sample["headers"]
            and response.headers.get(header) != sample["headers"][header]
        ):
            return [f"header {header}"]
    return shape_diff(ours, expected)
