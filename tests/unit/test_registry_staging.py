"""An environment's kept staging: one build at a time, and made afresh after a failed one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from services.registry.staging import Stagings


async def test_a_staging_a_failed_build_left_is_made_afresh(tmp_path: Path) -> None:
    stagings = Stagings(tmp_path)
    async with stagings.hold("team", "analysis") as prefix:
        prefix.mkdir(parents=True)
        (prefix / "kept").write_text("from the last image")
    async with stagings.hold("team", "analysis") as again:
        assert again == prefix and (again / "kept").exists()  # kept between good builds
        (again / "half-linked").write_text("x")
    with pytest.raises(RuntimeError):
        async with stagings.hold("team", "analysis"):
            raise RuntimeError("the install failed midway")
    async with stagings.hold("team", "analysis") as after:
        assert not after.exists()  # nothing half-changed is trusted
    async with stagings.hold("team", "other") as other:
        assert other != prefix


async def test_one_build_of_an_environment_at_a_time(tmp_path: Path) -> None:
    stagings = Stagings(tmp_path)
    inside: list[str] = []

    async def build(name: str) -> None:
        async with stagings.hold("team", "analysis"):
            inside.append(f"{name} in")
            await asyncio.sleep(0.05)
            inside.append(f"{name} out")

    await asyncio.gather(build("a"), build("b"))
    assert inside in (["a in", "a out", "b in", "b out"], ["b in", "b out", "a in", "a out"])


async def test_dropping_an_environment_or_a_namespace_removes_their_stagings(
    tmp_path: Path,
) -> None:
    stagings = Stagings(tmp_path)
    made = {}
    for ns, env in (("team", "a"), ("team", "b"), ("lab", "a")):
        async with stagings.hold(ns, env) as prefix:
            prefix.mkdir(parents=True)
            made[ns, env] = prefix
    await stagings.drop("team", "a")
    assert not made["team", "a"].exists() and made["team", "b"].exists()
    await stagings.drop("team")
    assert not made["team", "b"].exists() and made["lab", "a"].exists()
