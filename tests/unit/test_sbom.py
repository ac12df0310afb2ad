"""A build's SBOM: CycloneDX 1.5 JSON, checked with the schema cyclonedx-python-lib ships."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator

from services.packer.sbom import license_of_metadata, sbom_key, with_licenses
from shared.events import PackageRef
from shared.sbom import SbomSubject, build_sbom, package_purl

CHANNEL = "https://conda.anaconda.org/conda-forge"
SUBJECT = SbomSubject(
    "alice",
    "science",
    12,
    "0a1b2c3d-20240101-12-science",
    datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC),
)


def conda(
    name: str, version: str, build: str, license_: str | None = "MIT", ext: str = ".conda"
) -> PackageRef:
    return PackageRef(
        name=name,
        version=version,
        build=build,
        channel=CHANNEL,
        subdir="linux-64",
        url=f"{CHANNEL}/linux-64/{name}-{version}-{build}{ext}",
        sha256=(name.encode().hex() * 64)[:64],
        md5="0" * 32,
        license=license_,
    )


PACKAGES = [
    conda("numpy", "1.26.4", "py311h64a7726_0", "BSD-3-Clause"),
    conda("python", "3.11.8", "hab00c5b_0_cpython", "Python-2.0"),
    conda("libgcc-ng", "13.2.0", "h807b86a_5", "GPL-3.0-only WITH GCC-exception-3.1", ".tar.bz2"),
    conda("openssl", "3.2.1", "hd590300_0", "Apache 2.0 (no SPDX id)"),
    conda("tzdata", "2024a", "h0c530f3_0", None),
    PackageRef(
        manager="pip",
        name="Requests_Toolbelt",
        version="1.0.0",
        url="https://files.pythonhosted.org/requests_toolbelt-1.0.0-py2.py3-none-any.whl",
        sha256="c" * 64,
        license="Apache-2.0",
    ),
]


def validate(document: bytes) -> None:
    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(document.decode())
    assert error is None, error


def components(document: bytes) -> dict[str, dict]:
    return {c["purl"]: c for c in json.loads(document)["components"]}


def test_the_sbom_of_conda_and_pip_packages_is_valid_cyclonedx_1_5() -> None:
    document = build_sbom(SUBJECT, PACKAGES)
    validate(document)
    bom = json.loads(document)
    assert (bom["bomFormat"], bom["specVersion"]) == ("CycloneDX", "1.5")
    assert bom["metadata"]["component"]["name"] == "alice/science"
    assert bom["metadata"]["component"]["version"] == SUBJECT.build_key
    assert bom["metadata"]["timestamp"].startswith("2024-01-02T03:04:05")
    by_purl = components(document)
    assert len(by_purl) == len(PACKAGES)

    numpy = by_purl[
        f"pkg:conda/numpy@1.26.4?build=py311h64a7726_0&channel={CHANNEL}&subdir=linux-64&type=conda"
    ]
    assert numpy["name"] == "numpy" and numpy["version"] == "1.26.4"
    assert {"alg": "SHA-256", "content": PACKAGES[0].sha256} in numpy["hashes"]
    assert numpy["licenses"] == [{"license": {"id": "BSD-3-Clause"}}]
    props = {p["name"]: p["value"] for p in numpy["properties"]}
    assert props["conda-store:build"] == "py311h64a7726_0"
    assert props["conda-store:channel"] == CHANNEL
    assert numpy["externalReferences"] == [{"type": "distribution", "url": PACKAGES[0].url}]

    assert "type=tar.bz2" in next(p for p in by_purl if p.startswith("pkg:conda/libgcc-ng@"))
    gcc = next(c for p, c in by_purl.items() if "libgcc-ng" in p)
    assert gcc["licenses"] == [{"expression": "GPL-3.0-only WITH GCC-exception-3.1"}]
    ssl = next(c for p, c in by_purl.items() if "openssl" in p)
    assert ssl["licenses"] == [{"license": {"name": "Apache 2.0 (no SPDX id)"}}]
    assert "licenses" not in next(c for p, c in by_purl.items() if "tzdata" in p)

    toolbelt = by_purl["pkg:pypi/requests-toolbelt@1.0.0"]  # purl's pypi name normalization
    assert toolbelt["name"] == "Requests_Toolbelt"
    assert toolbelt["hashes"] == [{"alg": "SHA-256", "content": "c" * 64}]
    assert toolbelt["licenses"] == [{"license": {"id": "Apache-2.0"}}]
    # the environment depends on every package
    root = next(d for d in bom["dependencies"] if d["ref"] == "conda-store:build:12")
    assert sorted(root["dependsOn"]) == sorted(by_purl)


def test_the_validator_rejects_a_broken_document() -> None:
    """The check above can fail: a hash that is not hex is refused by the schema."""
    bom = json.loads(build_sbom(SUBJECT, PACKAGES))
    bom["components"][0]["hashes"][0]["content"] = "not-a-sha256"
    error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(json.dumps(bom))
    assert error is not None


def test_the_same_build_gives_the_same_bytes_and_another_build_another_serial() -> None:
    first = build_sbom(SUBJECT, PACKAGES)
    assert build_sbom(SUBJECT, list(reversed(PACKAGES))) == first
    other = SbomSubject("alice", "science", 13, "x-13-science", SUBJECT.created)
    assert (
        json.loads(build_sbom(other, PACKAGES))["serialNumber"] != json.loads(first)["serialNumber"]
    )


def test_an_empty_environment_and_a_repeated_package_are_valid() -> None:
    validate(build_sbom(SUBJECT, []))
    twice = build_sbom(SUBJECT, [PACKAGES[0], PACKAGES[0]])
    validate(twice)
    assert len(json.loads(twice)["components"]) == 1


@pytest.mark.parametrize(
    ("package", "purl"),
    [
        (
            conda("ca-certificates", "2024.2.2", "hbcca054_0", ext=".tar.bz2"),
            f"pkg:conda/ca-certificates@2024.2.2?build=hbcca054_0&channel={CHANNEL}"
            "&subdir=linux-64&type=tar.bz2",
        ),
        (
            PackageRef(manager="pip", name="zope.interface", version="6.2"),
            "pkg:pypi/zope-interface@6.2",
        ),
    ],
)
def test_package_urls_follow_the_purl_spec(package: PackageRef, purl: str) -> None:
    assert package_purl(package).to_string() == purl


def metadata(**headers: str | list[str]) -> Message:
    message = Message()
    for name, value in headers.items():
        for item in value if isinstance(value, list) else [value]:
            message[name.replace("_", "-")] = item
    return message


def test_a_wheels_license_comes_from_its_core_metadata() -> None:
    assert license_of_metadata(metadata(License_Expression="MIT", License="BSD")) == "MIT"
    assert license_of_metadata(metadata(License="Apache 2.0")) == "Apache 2.0"
    classifiers = ["License :: OSI Approved :: MIT License", "Programming Language :: Python"]
    long_text = "Copyright (c) 2024\n\nPermission is hereby granted ..."
    assert license_of_metadata(metadata(License=long_text, Classifier=classifiers)) == "MIT License"
    assert license_of_metadata(metadata(License="UNKNOWN")) is None


def test_missing_licenses_are_read_from_the_installed_prefix(tmp_path: Path) -> None:
    meta = tmp_path / "conda-meta"
    meta.mkdir()
    (meta / "tzdata-2024a-h0c530f3_0.json").write_text(
        json.dumps({"license": "LicenseRef-Public-Domain"})
    )
    dist = tmp_path / "lib" / "python3.11" / "site-packages" / "requests_toolbelt-1.0.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: requests-toolbelt\nVersion: 1.0.0\nLicense: Apache 2.0\n"
    )
    pip = PACKAGES[-1].model_copy(update={"license": None})
    done = with_licenses([PACKAGES[0], PACKAGES[4], pip], tmp_path)
    assert [p.license for p in done] == ["BSD-3-Clause", "LicenseRef-Public-Domain", "Apache 2.0"]
    assert sbom_key(12) == "builds/12/sbom.cdx.json"
    validate(build_sbom(SUBJECT, done))
