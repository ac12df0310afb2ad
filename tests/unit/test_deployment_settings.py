"""Deploy-time defaults of the runtime settings, from variables and a settings file."""

from __future__ import annotations

from pathlib import Path

import pytest

from shared.deployment_settings import DeploymentSettingsError, load_deployment_defaults


def test_nothing_set_means_no_defaults() -> None:
    assert load_deployment_defaults({"CONDA_STORE_API_PORT": "1", "PATH": "/bin"}) == {}


def test_variables_are_parsed_by_the_type_of_their_key() -> None:
    loaded = load_deployment_defaults(
        {
            "CONDA_STORE_SETTING_CONDA_DEFAULT_CHANNELS": "conda-forge, bioconda",
            "CONDA_STORE_SETTING_CONDA_INCLUDED_PACKAGES": '["ipykernel", "numpy >=1"]',
            "CONDA_STORE_SETTING_STORAGE_THRESHOLD": "1024",
            "CONDA_STORE_SETTING_DEFAULT_UID": "",
            "CONDA_STORE_SETTING_CONDA_COMMAND": "micromamba",
            "CONDA_STORE_SETTING_BUILD_ARTIFACTS": "LOCKFILE,YAML",
        }
    )
    assert loaded == {
        "conda_default_channels": ["conda-forge", "bioconda"],
        "conda_included_packages": ["ipykernel", "numpy >=1"],
        "storage_threshold": 1024,
        "default_uid": None,
        "conda_command": "micromamba",
        "build_artifacts": ["LOCKFILE", "YAML"],
    }


def test_a_file_gives_defaults_and_variables_win(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    path.write_text("conda_command: conda\nconda_default_channels: [defaults]\n")
    loaded = load_deployment_defaults(
        {"CONDA_STORE_SETTINGS_FILE": str(path), "CONDA_STORE_SETTING_CONDA_COMMAND": "mamba"}
    )
    assert loaded == {"conda_command": "mamba", "conda_default_channels": ["defaults"]}


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"CONDA_STORE_SETTING_NOPE": "1"}, "CONDA_STORE_SETTING_NOPE: 'nope' is not a runtime"),
        (
            {"CONDA_STORE_SETTING_STORAGE_THRESHOLD": "lots"},
            "CONDA_STORE_SETTING_STORAGE_THRESHOLD: storage_threshold: 1 validation error",
        ),
        ({"CONDA_STORE_SETTING_CONDA_PLATFORMS": "[1,"}, "not a JSON list"),
        ({"CONDA_STORE_SETTING_BUILD_ARTIFACTS": "IMAGE"}, "build_artifacts: 1 validation"),
    ],
)
def test_a_bad_variable_is_named(environ: dict[str, str], named: str) -> None:
    with pytest.raises(DeploymentSettingsError, match=named.replace("[", r"\[")):
        load_deployment_defaults(environ)


def test_a_bad_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "settings.yaml"
    variable = {"CONDA_STORE_SETTINGS_FILE": str(path)}
    with pytest.raises(DeploymentSettingsError, match="cannot read"):
        load_deployment_defaults(variable)
    path.write_text("- a list\n")
    with pytest.raises(DeploymentSettingsError, match="expected a mapping"):
        load_deployment_defaults(variable)
    path.write_text("conda_comand: typo\n")
    with pytest.raises(DeploymentSettingsError, match=r"unknown setting keys \['conda_comand'\]"):
        load_deployment_defaults(variable)
    path.write_text("conda_max_solve_time: soon\n")
    with pytest.raises(DeploymentSettingsError, match="conda_max_solve_time: 1 validation"):
        load_deployment_defaults(variable)
