"""Specification parsing, normalization, hashing, build keys and pinned YAML.

Expected strings are copied from conda-store 2025.2.2 recordings (reference samples.json):
they are facts of the API contract, not of our implementation.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml

from shared.runtime_settings import merge_settings
from shared.spec import (
    CondaSpecification,
    CondaSpecificationPip,
    LockfileSpecification,
    SpecificationError,
    build_key_v1,
    build_key_v2,
    dynamic_image_spec,
    normalize_channel,
    normalize_specification,
    parse_build_key,
    parse_lockfile_submission,
    parse_specification,
    recursive_sort,
    render_pinned_yaml,
    specification_sha256,
)

# --- parsing -------------------------------------------------------------------------------

RECORDED_BAD_NAME = (
    "String should match pattern '^[A-Za-z0-9-+_@$&?^~.=]+$' "
    "(type=string_pattern_mismatch, loc=('name',))"
)
RECORDED_BAD_DEP_TYPE = (
    "Input should be a valid string (type=string_type, "
    "loc=('dependencies', 0, 'function-after[<lambda>(), str]'))\n"
    "Input should be a valid dictionary or object to extract fields from "
    "(type=model_attributes_type, loc=('dependencies', 0, 'CondaSpecificationPip'))"
)
RECORDED_BAD_PIP = (
    "Input should be a valid string (type=string_type, "
    "loc=('dependencies', 0, 'function-after[<lambda>(), str]'))\n"
    "Value error, Invalid pip option '--foo bar' supported options are "
    "['--index-url', '--extra-index-url', '--trusted-host'] "
    "(type=value_error, loc=('dependencies', 0, 'CondaSpecificationPip', 'pip', 0))"
)


def _error(text: str) -> str:
    with pytest.raises(SpecificationError) as info:
        parse_specification(text)
    return info.value.message


def test_invalid_yaml_message():
    assert _error("name: [unclosed") == "Unable to parse. Invalid YAML"
    assert _error("a: b: c") == "Unable to parse. Invalid YAML"


def test_bad_name_matches_recording():
    assert _error("name: 'bad name'\ndependencies: [numpy]") == RECORDED_BAD_NAME


def test_bad_dependency_type_matches_recording():
    assert _error("name: x\ndependencies: [1]") == RECORDED_BAD_DEP_TYPE


def test_bad_pip_option_matches_recording():
    assert _error("name: x\ndependencies:\n- pip: ['--foo bar']") == RECORDED_BAD_PIP


def test_missing_name():
    assert _error("dependencies: [numpy]") == "Field required (type=missing, loc=('name',))"


@pytest.mark.parametrize("text", ["", "- a\n- b", "just a string", "42"])
def test_non_mapping_is_a_validation_error_like_conda_store(text):
    assert _error(text) == (
        "Input should be a valid dictionary or object to extract fields from "
        "(type=model_attributes_type, loc=())"
    )


def test_invalid_conda_matchspec():
    message = _error("name: x\ndependencies: ['@@@']")
    assert message.startswith(
        "Value error, Invalid conda package dependency specification @@@ (type=value_error, "
        "loc=('dependencies', 0, 'function-after[<lambda>(), str]'))\n"
    )


def test_invalid_pip_requirement():
    message = _error("name: x\ndependencies:\n- pip: ['requests >>> 1']")
    assert 'Value error, Invalid pypi package dependency "requests >>> 1" ensure it follows' in (
        message
    )
    assert "loc=('dependencies', 0, 'CondaSpecificationPip', 'pip', 0)" in message


@pytest.mark.parametrize(
    "entry",
    [
        "--index-url https://example.org/simple",
        "--extra-index-url=https://example.org/simple",
        "--trusted-host example.org",
        "requests>=2,<3",
        "numpy; python_version>'3.8'",
        "pkg[extra]==1.0",
    ],
)
def test_valid_pip_entries(entry):
    spec = parse_specification(json.dumps({"name": "x", "dependencies": [{"pip": [entry]}]}))
    assert spec.pip_dependencies() == [entry]


@pytest.mark.parametrize("entry", ["--index-url", "--no-deps x", "--foo=bar"])
def test_rejected_pip_options(entry):
    message = _error(json.dumps({"name": "x", "dependencies": [{"pip": [entry]}]}))
    assert f"Value error, Invalid pip option '{entry}' supported options are" in message


def test_json_text_and_defaults():
    spec = parse_specification('{"name": "env1", "dependencies": ["numpy>=1.2", "python=3.11"]}')
    assert spec.model_dump() == {
        "channels": [],
        "dependencies": ["numpy>=1.2", "python=3.11"],
        "description": "",
        "name": "env1",
        "prefix": None,
        "variables": None,
    }


def test_full_yaml_spec_round_trip():
    text = """
name: full
channels: [conda-forge, https://example.org/chan]
dependencies:
  - python=3.11
  - pip
  - pip:
      - requests
description: something
variables:
  CONDA_OVERRIDE_CUDA: "12.0"
  N: 3
"""
    spec = parse_specification(text)
    assert spec.conda_dependencies() == ["python=3.11", "pip"]
    assert spec.pip_dependencies() == ["requests"]
    assert spec.variables == {"CONDA_OVERRIDE_CUDA": "12.0", "N": 3}
    assert spec.model_dump()["dependencies"][2] == {"pip": ["requests"]}


# --- hash ----------------------------------------------------------------------------------

# Recorded specification rows (spec -> sha256) from conda-store 2025.2.2.
HASH_VECTORS = [
    (
        {"channels": ["conda-forge"], "dependencies": ["numpy"], "name": "name1"},
        "bfa61b4d5fe5c836001c60c81aef90f4a60745e6c0c0dd5f5c31f1b45c3438a8",
    ),
    (
        {"channels": ["bioconda"], "dependencies": ["numba"], "name": "name3"},
        "9f9e3fe9e2384ac3f36b8de79018f7ff0a6ab2fadd93986c7f13729d3ab78135",
    ),
    (
        {"channels": ["conda-forge"], "dependencies": ["python"], "name": "newenv"},
        "df98737b20c7ced1faeff4b563b2c683ff7057d352df4674fc8e819a89a50b5e",
    ),
]


@pytest.mark.parametrize(("fields", "expected"), HASH_VECTORS)
def test_hash_matches_conda_store(fields, expected):
    spec = CondaSpecification.model_validate(fields)
    assert specification_sha256(spec.model_dump()) == expected


def test_hash_vector_from_literal_dict():
    digest = specification_sha256(
        {
            "channels": ["conda-forge"],
            "dependencies": ["numpy"],
            "description": "",
            "name": "name1",
            "prefix": None,
            "variables": None,
        }
    )
    assert digest.startswith("bfa61b4d5fe5c836")
    assert digest.endswith("c3438a8")


def test_hash_ignores_dependency_and_channel_order():
    a = {"name": "x", "channels": ["a", "b"], "dependencies": ["numpy", "python", {"pip": ["r"]}]}
    b = {"name": "x", "channels": ["b", "a"], "dependencies": [{"pip": ["r"]}, "python", "numpy"]}
    dump = [CondaSpecification.model_validate(d).model_dump() for d in (a, b)]
    assert specification_sha256(dump[0]) == specification_sha256(dump[1])


def test_hash_covers_description_prefix_variables():
    base = CondaSpecification(name="x", dependencies=["numpy"]).model_dump()
    digests = {specification_sha256(base)}
    for key, value in (("description", "d"), ("prefix", "/p"), ("variables", {"A": 1})):
        digests.add(specification_sha256({**base, key: value}))
    assert len(digests) == 4


def test_recursive_sort_puts_containers_before_strings():
    assert recursive_sort(["b", {"z": 1, "a": [3, 1]}, "a"]) == [{"a": [1, 3], "z": 1}, "a", "b"]


# --- normalization -------------------------------------------------------------------------


def _settings(**namespace_layer):
    return merge_settings(None, {}, namespace_layer, None)


def test_observed_normalization_example():
    settings = _settings(
        conda_default_channels=["bioconda"],
        conda_included_packages=["ipykernel"],
        pypi_included_packages=["requests"],
    )
    spec = parse_specification("name: obs\ndependencies: [python]")
    result = normalize_specification(spec, settings)
    assert result.spec.model_dump() == {
        "channels": ["bioconda"],
        "dependencies": ["python", {"pip": ["requests"]}, "ipykernel"],
        "description": "",
        "name": "obs",
        "prefix": None,
        "variables": None,
    }
    assert result.channel_urls == ["https://conda.anaconda.org/bioconda"]
    assert spec.channels == [] and spec.dependencies == ["python"], "input must not change"


def test_default_channels_stored_unnormalized():
    result = normalize_specification(
        CondaSpecification(name="x", dependencies=["numpy"]), _settings()
    )
    assert result.spec.channels == ["conda-forge"]
    assert result.channel_urls == ["https://conda.anaconda.org/conda-forge"]


def test_normalized_default_spec_hash_matches_recording():
    spec = CondaSpecification(name="name1", dependencies=["numpy"])
    assert normalize_specification(spec, _settings()).sha256 == HASH_VECTORS[0][1]


def test_channel_alias_and_urls():
    settings = _settings(conda_channel_alias="https://mirror.example/conda/")
    spec = CondaSpecification(
        name="x",
        channels=["conda-forge", "http://h/c", "https://h/d", "file:///srv/chan", "/srv/local"],
        dependencies=["numpy"],
    )
    assert normalize_specification(spec, settings).channel_urls == [
        "https://mirror.example/conda/conda-forge",
        "http://h/c",
        "https://h/d",
        "file:///srv/chan",
        "file:///srv/local",
    ]
    assert normalize_channel("https://conda.anaconda.org", "conda-forge/label/dev") == (
        "https://conda.anaconda.org/conda-forge/label/dev"
    )


def test_disallowed_channel_message():
    settings = _settings(conda_allowed_channels=["conda-forge"])
    spec = CondaSpecification(name="x", channels=["bioconda"], dependencies=["numpy"])
    with pytest.raises(SpecificationError) as info:
        normalize_specification(spec, settings)
    assert info.value.message == (
        "Conda channels {'https://conda.anaconda.org/bioconda'} not allowed in specification"
    )


def test_allowed_channel_by_url_or_name():
    settings = _settings(conda_allowed_channels=["https://conda.anaconda.org/conda-forge"])
    spec = CondaSpecification(name="x", channels=["conda-forge"], dependencies=["numpy"])
    assert normalize_specification(spec, settings).spec.channels == ["conda-forge"]


def test_conda_required_missing_uses_conda_stores_literal_message():
    settings = _settings(conda_required_packages=["ipykernel"])
    with pytest.raises(SpecificationError) as info:
        normalize_specification(CondaSpecification(name="x", dependencies=["python"]), settings)
    assert info.value.message == "Conda packages False required and missing from specification"


def test_conda_required_present_by_name():
    settings = _settings(conda_required_packages=["python"])
    spec = CondaSpecification(name="x", dependencies=["python>=3.10"])
    assert normalize_specification(spec, settings).spec.dependencies == ["python>=3.10"]


def test_pypi_required_missing_message():
    settings = _settings(pypi_required_packages=["requests"])
    with pytest.raises(SpecificationError) as info:
        normalize_specification(CondaSpecification(name="x", dependencies=["python"]), settings)
    assert info.value.message == "PyPi packages False required and missing from specification"


def test_conda_default_packages_only_when_empty():
    settings = _settings(conda_default_packages=["python", "numpy"])
    empty = normalize_specification(CondaSpecification(name="x"), settings)
    assert empty.spec.dependencies == ["python", "numpy"]
    given = normalize_specification(CondaSpecification(name="x", dependencies=["scipy"]), settings)
    assert given.spec.dependencies == ["scipy"]


def test_pip_section_added_first_blocks_conda_defaults():
    # conda-store order: pypi before conda, so the new pip section makes dependencies non-empty.
    settings = _settings(conda_default_packages=["python"], pypi_included_packages=["requests"])
    result = normalize_specification(CondaSpecification(name="x"), settings)
    assert result.spec.model_dump()["dependencies"] == [{"pip": ["requests"]}]


def test_pypi_default_and_included_extend_existing_section():
    settings = _settings(pypi_default_packages=["flask"], pypi_included_packages=["requests"])
    empty = normalize_specification(CondaSpecification(name="x", dependencies=["python"]), settings)
    assert empty.spec.model_dump()["dependencies"] == ["python", {"pip": ["flask", "requests"]}]
    spec = CondaSpecification(
        name="x", dependencies=["python", CondaSpecificationPip(pip=["requests>=2"])]
    )
    kept = normalize_specification(spec, settings)
    assert kept.spec.model_dump()["dependencies"] == ["python", {"pip": ["requests>=2"]}]


def test_conda_included_not_duplicated_when_constrained():
    settings = _settings(conda_included_packages=["ipykernel", "python"])
    spec = CondaSpecification(name="x", dependencies=["python=3.11"])
    assert normalize_specification(spec, settings).spec.dependencies == ["python=3.11", "ipykernel"]


# --- lockfiles -----------------------------------------------------------------------------


def _lockfile(**overrides):
    lockfile = {
        "version": 1,
        "metadata": {
            "content_hash": {"linux-64": "abc"},
            "channels": [{"url": "conda-forge", "used_env_vars": []}],
            "platforms": ["linux-64"],
            "sources": ["environment.yml"],
        },
        "package": [
            {
                "name": "python",
                "version": "3.11.0",
                "manager": "conda",
                "platform": "linux-64",
                "dependencies": {"libzlib": ">=1.2"},
                "url": "https://conda.anaconda.org/conda-forge/linux-64/python-3.11.0-h_0.conda",
                "hash": {"md5": "0" * 32, "sha256": "1" * 64},
                "category": "main",
                "optional": False,
            }
        ],
    }
    lockfile.update(overrides)
    return lockfile


def test_lockfile_submission_json_and_yaml():
    for text in (json.dumps(_lockfile()), yaml.safe_dump(_lockfile())):
        spec = parse_lockfile_submission(text, "locked", "desc")
        assert isinstance(spec, LockfileSpecification)
        dumped = spec.model_dump()
        assert dumped["name"] == "locked" and dumped["description"] == "desc"
        assert dumped["lockfile"]["version"] == 1
        assert dumped["lockfile"]["package"][0]["name"] == "python"
        assert len(specification_sha256(dumped)) == 64


def test_lockfile_without_version_is_accepted_as_v1():
    lockfile = _lockfile()
    del lockfile["version"]
    spec = parse_lockfile_submission(json.dumps(lockfile), "locked", "")
    assert spec.model_dump()["lockfile"]["version"] == 1


@pytest.mark.parametrize("version", [2, "1", 0])
def test_lockfile_unsupported_version_is_a_clear_error(version):
    with pytest.raises(SpecificationError) as info:
        parse_lockfile_submission(json.dumps(_lockfile(version=version)), "locked", "")
    assert "Unsupported lockfile version" in info.value.message


def test_lockfile_missing_parts():
    with pytest.raises(SpecificationError) as info:
        parse_lockfile_submission(json.dumps({"version": 1}), "locked", "")
    assert info.value.message.startswith("2 validation errors for LockfileSpecification\n")
    assert "lockfile.package\n  Field required" in info.value.message
    assert "lockfile.metadata\n  Field required" in info.value.message


def test_lockfile_empty_environment_name_is_rejected():
    with pytest.raises(SpecificationError) as info:
        parse_lockfile_submission(json.dumps(_lockfile()), "", "")
    assert info.value.message.startswith(
        "1 validation error for LockfileSpecification\nname\n  String should match pattern"
    )


@pytest.mark.parametrize("text", ["[1, 2]", "a: [", "just text"])
def test_lockfile_not_a_mapping(text):
    with pytest.raises(SpecificationError):
        parse_lockfile_submission(text, "locked", "")


# --- build keys and dynamic images ---------------------------------------------------------

SHA = "bfa61b4d5fe5c836001c60c81aef90f4a60745e6c0c0dd5f5c31f1b45c3438a8"


def test_build_key_v2_matches_recording():
    scheduled = dt.datetime(2026, 11, 23, 20, 20, 51, 471461)  # naive UTC, as recorded
    assert build_key_v2(SHA, scheduled, 1, "name1") == "bfa61b4d-1795465251-1-name1"
    aware = scheduled.replace(tzinfo=dt.UTC).astimezone(dt.timezone(dt.timedelta(hours=2)))
    assert build_key_v2(SHA, aware, 1, "name1") == "bfa61b4d-1795465251-1-name1"


def test_parse_build_keys():
    assert parse_build_key("bfa61b4d-1795465251-1-name1") == 1
    assert parse_build_key("bfa61b4d-1795465251-42-name-with-dashes") == 42
    v1 = build_key_v1(SHA, dt.datetime(2023, 11, 5, 3, 54, 10, 510258), 12345678, "my-env")
    assert v1 == f"{SHA}-20231105-035410-510258-12345678-my-env"
    assert parse_build_key(v1) == 12345678
    assert parse_build_key("64a94376" + "0" * 24) is None  # v3: needs a lookup by hash
    assert parse_build_key("latest") is None
    assert parse_build_key("bfa61b4d-x-y") is None


def test_dynamic_image_spec_reference_example():
    name, deps = dynamic_image_spec(["python.lt.3.10", "numpy.gt.1.0"])
    assert name == "python.lt.3.10-numpy.gt.1.0"
    assert deps == ["numpy>1.0", "python<3.10"]


def test_dynamic_image_spec_all_operators():
    _, deps = dynamic_image_spec(["a.ge.1", "b.le.2", "c.eq.3", "d"])
    assert deps == ["a>=1", "b<=2", "c==3", "d"]


# --- pinned YAML ---------------------------------------------------------------------------


def test_pinned_yaml_layout():
    text = render_pinned_yaml(
        "env",
        ["conda-forge"],
        [("python", "3.11.0", "h_0_cpython"), ("numpy", "1.26.0", "py311_0")],
        [("requests", "2.31.0")],
    )
    assert text == (
        "channels:\n"
        "- conda-forge\n"
        "dependencies:\n"
        "- numpy=1.26.0=py311_0\n"
        "- python=3.11.0=h_0_cpython\n"
        "- pip:\n"
        "  - requests==2.31.0\n"
        "name: env\n"
        "prefix: null\n"
    )


def test_pinned_yaml_without_pip_and_with_prefix():
    text = render_pinned_yaml("env", [], [("zlib", "1.3", "0")], prefix="/srv/p")
    assert yaml.safe_load(text) == {
        "channels": [],
        "dependencies": ["zlib=1.3=0"],
        "name": "env",
        "prefix": "/srv/p",
    }
