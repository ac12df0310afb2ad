"""The guided editor's conversions: YAML to form fields and back, losing nothing."""

from __future__ import annotations

import pytest
import yaml

from services.ui.guided import (
    GuidedError,
    GuidedModel,
    PackageRow,
    VariableRow,
    dependency_text,
    field_errors,
    load_for_guided,
    parse_dependency,
    spec_from_model,
    spec_to_yaml,
)

WRITTEN = """name: roundtrip
description: for the tests
channels:
  - conda-forge
dependencies:
  - python >=3.11
  - numpy
  - libfoo>=0.9,<2
  - bar=1.2
  - baz 1.2.*
  - conda-forge::qux
  - pip:
      - --index-url https://pypi.example/simple
      - requests>=2
variables:
  THREADS: 4
  MODE: fast
prefix: /opt/envs/roundtrip
"""


@pytest.mark.parametrize(
    ("text", "op", "version", "upper", "constraint"),
    [
        ("numpy", "any", "", "", ""),
        ("numpy ==1.26.4", "==", "1.26.4", "", ""),
        ("numpy>=1.2", ">=", "1.2", "", ""),
        ("numpy <2", "<", "2", "", ""),
        ("libfoo >=0.9,<2", "range", "0.9", "2", ""),
        ("bar=1.2", "custom", "", "", "=1.2"),
        ("baz 1.2.*", "custom", "", "", "1.2.*"),
        ("python 3.11.* *_cpython", "custom", "", "", "3.11.* *_cpython"),
    ],
)
def test_a_dependency_becomes_a_row(
    text: str, op: str, version: str, upper: str, constraint: str
) -> None:
    row = parse_dependency(text)
    assert (row.op, row.version, row.upper, row.constraint) == (op, version, upper, constraint)
    assert dependency_text(row) == text  # untouched: written back as read


def test_changed_rows_are_written_as_people_write_them() -> None:
    assert dependency_text(PackageRow(name="libfoo", op="<", version="1.0")) == "libfoo <1.0"
    assert dependency_text(PackageRow(name="a", op="range", version="1", upper="2")) == "a >=1,<2"
    assert dependency_text(PackageRow(name="a", op="==", version="")) == "a"
    assert dependency_text(PackageRow(name="a", op="custom", constraint="=1.2")) == "a=1.2"
    assert dependency_text(PackageRow(name="a", op="custom", constraint="1.*")) == "a 1.*"
    changed = parse_dependency("numpy >=1").model_copy(update={"version": "2"})
    assert dependency_text(changed) == "numpy >=2"


def test_text_to_form_and_back_keeps_everything() -> None:
    model = load_for_guided(WRITTEN)
    assert model.name == "roundtrip" and model.description == "for the tests"
    assert [p.name for p in model.packages] == [
        "python",
        "numpy",
        "libfoo",
        "bar",
        "baz",
        "conda-forge::qux",
    ]
    assert model.pip == ["--index-url https://pypi.example/simple", "requests>=2"]
    assert model.extra == {"prefix": "/opt/envs/roundtrip"}
    back = spec_to_yaml(spec_from_model(GuidedModel.model_validate(model.model_dump())))
    assert back == WRITTEN
    assert yaml.safe_load(back)["variables"]["THREADS"] == 4  # a number stays a number


def test_form_edits_reach_the_yaml() -> None:
    model = load_for_guided(WRITTEN)
    model.packages[2].upper = "1.0"
    model.packages.append(PackageRow(name="hello-cli"))
    model.pip = []
    model.variables.append(VariableRow(key="EMPTY_KEY_SKIPPED", value="x"))
    model.variables.append(VariableRow(key=" ", value="ignored"))
    data = yaml.safe_load(spec_to_yaml(spec_from_model(model)))
    assert data["dependencies"][2] == "libfoo >=0.9,<1.0"
    assert data["dependencies"][-1] == "hello-cli"
    assert not any(isinstance(d, dict) for d in data["dependencies"])
    assert data["variables"] == {"THREADS": 4, "MODE": "fast", "EMPTY_KEY_SKIPPED": "x"}


def test_yaml_is_indented_as_people_write_it() -> None:
    text = spec_to_yaml({"name": "x", "channels": ["a"], "dependencies": ["b"], "prefix": None})
    assert text == "name: x\nchannels:\n  - a\ndependencies:\n  - b\n"


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("name: [unclosed", "does not parse"),
        ("- a\n- b\n", "not a mapping"),
        ("name: x\ndependencies: numpy\n", "dependencies must be a list"),
        ("name: x\ndependencies:\n  - {conda: 1}\n", "has no field in the guided editor"),
        ("name: x\ndependencies:\n  - pip: [a]\n  - pip: [b]\n", "more than one pip section"),
        ("name: x\nvariables:\n  A: [1]\n", "variables must map names"),
        ("name: x\nchannels: conda-forge\n", "channels must be a list"),
    ],
)
def test_what_the_form_cannot_show_is_refused(text: str, why: str) -> None:
    with pytest.raises(GuidedError, match=why):
        load_for_guided(text)


def test_field_errors_land_on_their_fields() -> None:
    model = GuidedModel(
        name="bad name",
        packages=[
            PackageRow(name="ok"),
            PackageRow(name=""),
            PackageRow(name="x", op="custom", constraint=">=>=1"),
        ],
        pip=["requests", "--bad x"],
    )
    errors = field_errors(model)
    assert set(errors) == {"name", "packages.2", "pip.1"}
    assert "invalid environment name 'bad name'" in errors["name"]
    assert "Invalid conda package dependency" in errors["packages.2"]
    assert "Invalid pip option '--bad x'" in errors["pip.1"]
    assert "required" in field_errors(GuidedModel())["name"]
