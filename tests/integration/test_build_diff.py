"""``GET /api/v1/build/{a}/diff/{b}/`` and ``/build/{b}/diff/`` against the real stack: the
read model's packages and specs of two builds, permissions, and the default comparison."""

from __future__ import annotations

from typing import Any

from shared.events import NamespaceCreated, PackageRef, Packed, Solved
from tests.fixtures.api import ApiHarness, api, spec_event  # noqa: F401

CF = "https://conda.anaconda.org/conda-forge"


def ref(name: str, version: str, build: str = "h0_0", manager: str = "conda") -> PackageRef:
    return PackageRef(manager=manager, name=name, version=version, build=build, channel=CF)  # type: ignore[arg-type]


async def completed(
    h: ApiHarness, build_id: int, namespace: str, deps: list[str], pkgs: list[PackageRef]
) -> None:
    key = f"builds/{build_id}/"
    await h.append(
        f"build-{build_id}",
        spec_event(build_id, namespace, "analysis", deps),
        Solved(build_id=build_id, lockfile_key=key + "l", yaml_key=key + "y", packages=pkgs),
        Packed(build_id=build_id, archive_key=None, logs_key=key + "logs.txt", size=1),
    )


async def test_diff_of_two_builds_and_with_the_previous_one(api: ApiHarness) -> None:  # noqa: F811
    await api.append("namespace-team", NamespaceCreated(namespace="team"))
    await completed(api, 1, "team", ["numpy"], [ref("numpy", "1.26.4"), ref("six", "1.16.0")])
    await completed(
        api,
        2,
        "team",
        ["numpy", "scipy"],
        [ref("numpy", "1.26.10"), ref("scipy", "1.14.1"), ref("tomli", "2.0.1", "", "pip")],
    )
    await api.projected()
    admin = api.admin()

    r = await api.client.get("/api/v1/build/1/diff/2/", headers=admin)
    assert r.status_code == 200, r.text
    data: dict[str, Any] = r.json()["data"]
    assert (data["from"]["id"], data["to"]["id"]) == (1, 2)
    assert data["counts"] == {
        "added": 2,
        "removed": 1,
        "upgraded": 1,
        "downgraded": 0,
        "rebuilt": 0,
    }
    kinds = {(p["kind"], p["manager"], p["name"]) for p in data["packages"]}
    assert kinds == {
        ("upgraded", "conda", "numpy"),
        ("added", "conda", "scipy"),
        ("added", "pip", "tomli"),
        ("removed", "conda", "six"),
    }
    numpy = next(p for p in data["packages"] if p["name"] == "numpy")
    assert (numpy["old"]["version"], numpy["new"]["version"]) == ("1.26.4", "1.26.10")
    assert data["specification"]["dependencies_added"] == ["scipy"]
    assert "+- scipy" in data["specification"]["text"]

    # the other way round it is a downgrade; the default compares with the previous build
    back = (await api.client.get("/api/v1/build/2/diff/1/", headers=admin)).json()["data"]
    assert back["counts"]["downgraded"] == 1 and back["counts"]["removed"] == 2
    default = (await api.client.get("/api/v1/build/2/diff/", headers=admin)).json()["data"]
    assert default["counts"] == data["counts"] and default["from"]["id"] == 1
    first = await api.client.get("/api/v1/build/1/diff/", headers=admin)
    assert first.status_code == 404 and "no earlier completed build" in first.json()["message"]

    # unknown builds and readers without access to one side get the usual answers
    assert (await api.client.get("/api/v1/build/1/diff/99/", headers=admin)).status_code == 404
    assert (await api.client.get("/api/v1/build/1/diff/2/")).status_code in (401, 403)
    assert (await api.client.get("/api/v1/build/1/diff/2")).status_code == 307
