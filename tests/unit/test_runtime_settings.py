"""Runtime settings: keys, defaults, scopes, merge rules and conda-store's error texts.

Expected strings are copied from conda-store 2025.2.2 recordings (reference samples.json).
"""

from __future__ import annotations

import pytest

from shared.runtime_settings import (
    GLOBAL_SETTING_KEYS,
    SETTING_KEYS,
    RuntimeSettings,
    SettingsError,
    is_global_setting,
    makes_image,
    merge_settings,
    setting_sources,
    setting_update_message,
    validate_setting_update,
)

# GET /api/v1/setting/ as recorded (uid/gid 0 and linux-64 were that machine's values).
RECORDED_DEFAULTS = {
    "default_namespace": "default",
    "filesystem_namespace": "filesystem",
    "default_uid": 0,
    "default_gid": 0,
    "default_permissions": "775",
    "storage_threshold": 5368709120,
    "conda_command": "mamba",
    "conda_platforms": ["linux-64", "noarch"],
    "conda_max_solve_time": 300,
    "conda_indexed_channels": ["main", "conda-forge", "https://repo.anaconda.com/pkgs/main"],
    "build_artifacts_kept_on_deletion": ["LOGS", "LOCKFILE", "YAML"],
    "conda_solve_platforms": ["linux-64"],
    "conda_channel_alias": "https://conda.anaconda.org",
    "conda_default_channels": ["conda-forge"],
    "conda_allowed_channels": [],
    "conda_default_packages": [],
    "conda_required_packages": [],
    "conda_included_packages": [],
    "pypi_default_packages": [],
    "pypi_required_packages": [],
    "pypi_included_packages": [],
    # deliberate deviation: conda-store's list has no DOCKER_MANIFEST; here it means the
    # build's OCI image, made unless the setting leaves it out
    "build_artifacts": [
        "LOCKFILE",
        "YAML",
        "CONDA_PACK",
        "CONSTRUCTOR_INSTALLER",
        "DOCKER_MANIFEST",
    ],
    # an extension (conda-store has no such key), after conda-store's keys
    "conda_virtual_packages": [],
}

RECORDED_BAD_TYPE = (
    "1 validation error for list[str]\n"
    "  Input should be a valid list [type=list_type, input_value=1, input_type=int]\n"
    "    For further information visit https://errors.pydantic.dev/2.14/v/list_type"
)


def _recorded_machine() -> RuntimeSettings:
    return RuntimeSettings(
        default_uid=0,
        default_gid=0,
        conda_platforms=["linux-64", "noarch"],
        conda_solve_platforms=["linux-64"],
    )


def test_defaults_and_key_order_match_recording():
    dumped = _recorded_machine().model_dump(mode="json")
    assert dumped == RECORDED_DEFAULTS
    assert list(dumped) == list(RECORDED_DEFAULTS)
    assert SETTING_KEYS == tuple(RECORDED_DEFAULTS)


def test_machine_dependent_defaults_have_the_right_shape():
    settings = RuntimeSettings()
    assert settings.conda_platforms[1] == "noarch"
    assert settings.conda_solve_platforms == settings.conda_platforms[:1]


def test_scopes():
    assert GLOBAL_SETTING_KEYS == {
        "default_namespace",
        "filesystem_namespace",
        "default_uid",
        "default_gid",
        "default_permissions",
        "storage_threshold",
        "conda_command",
        "conda_platforms",
        "conda_max_solve_time",
        "conda_indexed_channels",
        "build_artifacts_kept_on_deletion",
    }
    assert not is_global_setting("conda_default_channels")


def _error(level, body) -> str:
    with pytest.raises(SettingsError) as info:
        validate_setting_update(level, body)
    return info.value.message


def test_invalid_key_message_matches_recording():
    assert _error("global", {"nope": 1}) == "Invalid setting keys {'nope'}"
    assert _error("namespace", {"conda_default_channels": [], "nope": 1}) == (
        "Invalid setting keys {'nope'}"
    )


def test_global_key_below_global_matches_recording():
    expected = (
        "Setting conda_max_solve_time is a global setting and cannot be set within a "
        "namespace or environment"
    )
    assert _error("namespace", {"conda_max_solve_time": 10}) == expected
    assert _error("environment", {"conda_max_solve_time": 10}) == expected


def test_bad_value_matches_recording():
    assert _error("namespace", {"conda_default_channels": 1}) == RECORDED_BAD_TYPE
    assert _error("global", {"conda_default_channels": 1}) == RECORDED_BAD_TYPE


def test_bad_enum_and_int_values():
    assert _error("global", {"build_artifacts": ["NOPE"]}).startswith(
        "1 validation error for list[str-enum[BuildArtifactType]]\n"
    )
    assert _error("global", {"conda_max_solve_time": "soon"}).startswith(
        "1 validation error for int\n"
    )


def test_checks_run_in_body_order():
    body = {"conda_default_channels": 1, "conda_max_solve_time": 5}
    assert _error("namespace", body) == RECORDED_BAD_TYPE
    body = {"conda_max_solve_time": 5, "conda_default_channels": 1}
    assert _error("namespace", body).startswith("Setting conda_max_solve_time is a global")


def test_valid_updates_are_coerced():
    assert validate_setting_update("global", {"conda_max_solve_time": "60"}) == {
        "conda_max_solve_time": 60
    }
    assert validate_setting_update("environment", {"build_artifacts": ["YAML"]}) == {
        "build_artifacts": ["YAML"]
    }
    assert validate_setting_update("global", {}) == {}


def test_success_message_matches_recording():
    assert setting_update_message(["conda_max_solve_time"]) == (
        "global setting keys ['conda_max_solve_time'] updated"
    )
    assert setting_update_message({"a": 1, "b": 2}) == "global setting keys ['a', 'b'] updated"


def test_merge_order_and_list_replacement():
    defaults = _recorded_machine()
    merged = merge_settings(
        defaults,
        {"conda_default_channels": ["a", "b"], "conda_max_solve_time": 60},
        {"conda_default_channels": ["ns"], "conda_included_packages": ["ipykernel"]},
        {"conda_included_packages": ["env"]},
    )
    assert merged.conda_default_channels == ["ns"]
    assert merged.conda_included_packages == ["env"]
    assert merged.conda_max_solve_time == 60
    assert merged.conda_allowed_channels == []


def test_global_keys_in_lower_layers_are_ignored():
    merged = merge_settings(
        _recorded_machine(),
        {"storage_threshold": 1},
        {"storage_threshold": 2, "default_namespace": "ns"},
        {"conda_max_solve_time": 3},
    )
    assert merged.storage_threshold == 1
    assert merged.default_namespace == "default"
    assert merged.conda_max_solve_time == 300


def test_merge_accepts_mapping_defaults_and_ignores_unknown_keys():
    merged = merge_settings({"conda_command": "micromamba", "bogus": 1}, {"other": 2})
    assert merged.conda_command == "micromamba"
    assert "bogus" not in merged.model_dump()


def test_merge_does_not_mutate_defaults():
    defaults = _recorded_machine()
    merge_settings(defaults, {}, {"conda_default_channels": ["x"]}, None)
    assert defaults.conda_default_channels == ["conda-forge"]
    assert merge_settings(defaults).conda_default_channels == ["conda-forge"]


def test_sources_name_the_layer_each_value_comes_from():
    sources = setting_sources(
        {"conda_command": "micromamba", "conda_default_channels": ["deployed"]},
        {"conda_default_channels": ["global"], "storage_threshold": 1},
        {"conda_included_packages": ["ns"], "storage_threshold": 2, "bogus": 3},
        {"conda_included_packages": ["env"], "pypi_included_packages": ["x"]},
    )
    assert sources["conda_command"] == "deployment"
    assert sources["conda_default_channels"] == "global"
    assert sources["storage_threshold"] == "global"  # a global key set lower is ignored
    assert sources["conda_included_packages"] == "environment"
    assert sources["pypi_included_packages"] == "environment"
    assert sources["conda_allowed_channels"] == "default"
    assert set(sources) == set(SETTING_KEYS)


def test_sources_agree_with_the_merge():
    layers = ({"conda_command": "a"}, {"conda_command": "b"}, {"conda_channel_alias": "c"}, None)
    merged = merge_settings(*layers)
    sources = setting_sources(*layers)
    assert (merged.conda_command, sources["conda_command"]) == ("b", "global")
    assert (merged.conda_channel_alias, sources["conda_channel_alias"]) == ("c", "namespace")


def test_an_image_is_made_unless_build_artifacts_leave_it_out():
    assert makes_image(RuntimeSettings())
    assert makes_image(RuntimeSettings(build_artifacts=["LOCKFILE", "DOCKER_MANIFEST"]))
    assert not makes_image(RuntimeSettings(build_artifacts=["LOCKFILE", "YAML", "CONDA_PACK"]))
