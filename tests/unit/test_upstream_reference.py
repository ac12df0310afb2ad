"""Base image references and the config of an image stacked on an upstream base."""

from __future__ import annotations

import pytest

from services.registry.image import Layer, UpstreamBase, on_upstream
from services.registry.upstream import (
    ImageReference,
    UpstreamError,
    parse_reference,
    pick_platform,
)

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("debian", ImageReference("registry-1.docker.io", "library/debian", "latest")),
        (
            "docker.io/library/debian:bookworm-slim",
            ImageReference("registry-1.docker.io", "library/debian", "bookworm-slim"),
        ),
        ("bitnami/python:3.11", ImageReference("registry-1.docker.io", "bitnami/python", "3.11")),
        ("localhost:5000/base/img", ImageReference("localhost:5000", "base/img", "latest")),
        ("quay.io/org/img:1.0", ImageReference("quay.io", "org/img", "1.0")),
        (f"ghcr.io/org/img@{DIGEST}", ImageReference("ghcr.io", "org/img", DIGEST)),
        ("127.0.0.1:5000/a/b:2", ImageReference("127.0.0.1:5000", "a/b", "2")),
    ],
)
def test_parse_reference(text: str, expected: ImageReference) -> None:
    assert parse_reference(text) == expected


@pytest.mark.parametrize("text", ["UPPER/case", "img@sha256:short", "quay.io/", ""])
def test_bad_references_are_refused(text: str) -> None:
    with pytest.raises(UpstreamError):
        parse_reference(text)


def test_pick_platform_takes_linux_amd64() -> None:
    index = {
        "manifests": [
            {"digest": "sha256:arm", "platform": {"os": "linux", "architecture": "arm64"}},
            {"digest": "sha256:amd", "platform": {"os": "linux", "architecture": "amd64"}},
        ]
    }
    assert pick_platform(index) == "sha256:amd"
    with pytest.raises(UpstreamError, match="linux/amd64"):
        pick_platform({"manifests": index["manifests"][:1]})


def test_config_on_upstream_keeps_the_base_settings_and_puts_the_env_first() -> None:
    ours = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Env": ["PATH=/opt/conda/bin:/usr/bin", "CONDA_PREFIX=/opt/conda", "LANG=C.UTF-8"],
            "Cmd": ["/bin/sh"],
            "WorkingDir": "/",
            "Labels": {"org.conda-store.environment": "e"},
        },
        "rootfs": {"type": "layers", "diff_ids": ["sha256:ours"]},
        "history": [{"created_by": "conda-store: environment"}],
    }
    base = UpstreamBase(
        [Layer("upstream", "sha256:blob", "sha256:base", 10)],
        {
            "config": {
                "Env": ["PATH=/usr/local/bin:/usr/bin", "LANG=en_US.UTF-8"],
                "Entrypoint": ["/entry"],
                "User": "app",
                "Labels": {"vendor": "x", "org.conda-store.environment": "spoofed"},
            },
            "rootfs": {"type": "layers", "diff_ids": ["sha256:base"]},
        },
    )
    merged = on_upstream(ours, base, "/opt/conda")
    config = merged["config"]
    assert config["Env"] == [
        "PATH=/opt/conda/bin:/usr/local/bin:/usr/bin",
        "LANG=en_US.UTF-8",
        "CONDA_PREFIX=/opt/conda",
    ]
    assert config["Entrypoint"] == ["/entry"] and "Cmd" not in config
    assert config["User"] == "app" and config["WorkingDir"] == "/"
    assert config["Labels"] == {"vendor": "x", "org.conda-store.environment": "e"}
    assert merged["rootfs"]["diff_ids"] == ["sha256:base", "sha256:ours"]
    assert [h["created_by"] for h in merged["history"]] == [
        "upstream base layer",
        "conda-store: environment",
    ]
