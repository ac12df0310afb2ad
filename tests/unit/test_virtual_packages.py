"""Virtual packages for GPU (and other) builds: the setting, conda's override variables, and
what the solver gives rattler (no I/O)."""

from __future__ import annotations

import pytest

from services.solver.conda_solve import virtual_packages
from services.solver.lockfile import virtual_packages_metadata
from services.solver.types import SolveRequest
from shared.runtime_settings import SettingsError, validate_setting_update
from shared.spec import SpecificationError
from shared.spec.virtual_packages import parse_virtual_package, virtual_package_overrides


def as_tuples(platform: str, overrides: dict[str, str] | None = None) -> dict[str, tuple[str, str]]:
    return {
        v.name.normalized: (str(v.version), str(v.build_string))
        for v in virtual_packages(platform, overrides)
    }


def test_variables_win_over_the_setting_and_an_empty_value_removes() -> None:
    assert virtual_package_overrides(["__cuda=12.4"], None) == {"__cuda": "12.4"}
    assert virtual_package_overrides(["__cuda=12.4"], {"CONDA_OVERRIDE_CUDA": "11.8"}) == {
        "__cuda": "11.8"
    }
    assert virtual_package_overrides(["__cuda=12.4"], {"CONDA_OVERRIDE_CUDA": ""}) == {"__cuda": ""}
    both = virtual_package_overrides([], {"CONDA_OVERRIDE_GLIBC": "2.35", "OTHER": "x"})
    assert both == {"__glibc": "2.35"}
    arch = virtual_package_overrides([], {"CONDA_OVERRIDE_ARCHSPEC": "skylake"})
    assert arch == {"__archspec": "1=skylake"}
    with pytest.raises(SpecificationError, match="variables.CONDA_OVERRIDE_CUDA"):
        virtual_package_overrides([], {"CONDA_OVERRIDE_CUDA": "twelve point four!"})


def test_entries_are_checked_where_the_setting_is_changed() -> None:
    assert parse_virtual_package("__archspec=1=x86_64") == ("__archspec", "1=x86_64")
    for bad in ("cuda=12", "__cuda", "__cuda=", "__cuda=12 4"):
        with pytest.raises(ValueError):
            parse_virtual_package(bad)
    ok = validate_setting_update("namespace", {"conda_virtual_packages": ["__cuda=12.4"]})
    assert ok == {"conda_virtual_packages": ["__cuda=12.4"]}
    with pytest.raises(SettingsError, match="starts with '__'"):
        validate_setting_update("environment", {"conda_virtual_packages": ["cuda=12.4"]})


def test_the_solver_applies_overrides_per_platform() -> None:
    base = as_tuples("linux-64")
    assert base["__glibc"] == ("2.28", "0") and "__cuda" not in base
    cuda = as_tuples("linux-64", {"__cuda": "12.4", "__glibc": "2.35"})
    assert cuda["__cuda"] == ("12.4", "0") and cuda["__glibc"] == ("2.35", "0")
    assert "__glibc" not in as_tuples("osx-arm64", {"__glibc": "2.35"})  # linux only
    assert as_tuples("osx-arm64", {"__cuda": "12.4"})["__cuda"] == ("12.4", "0")
    assert "__glibc" not in as_tuples("linux-64", {"__glibc": ""})


def test_requests_without_overrides_keep_their_cache_keys() -> None:
    plain = SolveRequest(channels=["c"], conda=["x"])
    assert "virtual_packages" not in plain.normalized()
    gpu = SolveRequest(channels=["c"], conda=["x"], virtual_packages={"__cuda": "12.4"})
    assert gpu.cache_key("f", {}) != plain.cache_key("f", {})
    assert virtual_packages_metadata({}) is None
    assert virtual_packages_metadata({"__glibc": "2.35", "__cuda": "12.4"}) == {
        "virtual_packages": "__cuda=12.4 __glibc=2.35"
    }
