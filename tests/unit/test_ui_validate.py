"""The create page's checks: errors land on the line that caused them, with the API's rules."""

from __future__ import annotations

from services.ui.permissions import Viewer
from services.ui.validate import check_specification


def lines(text: str, settings: dict | None = None) -> list[int]:
    return [p.line for p in check_specification(text, settings).problems]


def test_valid_spec_passes() -> None:
    verdict = check_specification("name: ok\nchannels: [conda-forge]\ndependencies: [python]\n")
    assert verdict.ok and verdict.name == "ok" and not verdict.problems


def test_yaml_error_points_at_its_line() -> None:
    verdict = check_specification("name: x\ndependencies:\n  - python\n   - bad: [\n")
    assert not verdict.ok
    assert verdict.problems[0].line == 4
    assert verdict.problems[0].message.startswith("Invalid YAML")


def test_bad_match_spec_and_pip_option_point_at_their_entries() -> None:
    text = (
        "name: x\ndependencies:\n  - python\n  - 'numpy >=>= 1'\n  - pip:\n    - '--bad x'\n  - 3\n"
    )
    verdict = check_specification(text)
    assert [p.line for p in verdict.problems] == [4, 6, 7]
    assert "Invalid conda package dependency specification" in verdict.problems[0].message
    assert "Invalid pip option" in verdict.problems[1].message


def test_name_rules() -> None:
    assert lines("name: 'a b'\ndependencies: []\n") == [1]
    assert "'name' is required" in check_specification("dependencies: []\n").problems[0].message
    assert not check_specification("- a\n- b\n").ok
    assert not check_specification("   \n").ok


def test_disallowed_channel_points_at_channels() -> None:
    text = "name: x\nchannels:\n  - bioconda\ndependencies: [python]\n"
    verdict = check_specification(text, {"conda_allowed_channels": ["conda-forge"]})
    assert not verdict.ok and verdict.problems[0].line == 2
    assert "not allowed" in verdict.problems[0].message
    assert check_specification(text, {"conda_allowed_channels": []}).ok


def test_viewer_permissions_follow_binding_globs() -> None:
    viewer = Viewer.from_api(
        {
            "authenticated": True,
            "primary_namespace": "alice",
            "entity_permissions": {
                "default/*": ["environment::read"],
                "alice/*": ["environment:create", "environment::read", "build::delete"],
            },
        }
    )
    assert viewer.can("environment::read", "default/env")
    assert not viewer.can("build::delete", "default/env")
    assert viewer.can("build::delete", "alice/env")
    assert viewer.creatable_namespaces(["default", "alice"]) == ["alice"]
    assert not Viewer.from_api(None).authenticated


def test_setting_values_are_checked_one_field_at_a_time() -> None:
    from services.ui.validate import check_setting_values

    problems = check_setting_values(
        "namespace",
        {
            "conda_default_channels": ["ok"],
            "conda_included_packages": "numpy",
            "storage_threshold": 5,
            "build_artifacts": ["LOCKFILE", "IMAGE"],
        },
    )
    assert problems == {
        "conda_included_packages": "Input should be a valid list",
        "storage_threshold": "Setting storage_threshold is a global setting and cannot be set "
        "within a namespace or environment",
        "build_artifacts": "item 2: Input should be 'DIRECTORY', 'LOCKFILE', 'LOGS', 'YAML', "
        "'CONDA_PACK', 'DOCKER_MANIFEST', 'CONSTRUCTOR_INSTALLER', 'CONTAINER_REGISTRY', "
        "'DOCKER_BLOB' or 'SBOM'",
    }
    assert check_setting_values("global", {"storage_threshold": "lots"}) == {
        "storage_threshold": "Input should be a valid integer, unable to parse string as an integer"
    }
