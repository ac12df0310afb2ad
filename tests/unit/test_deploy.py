"""compose.yaml and the Kubernetes manifests only use commands and settings that exist."""

from __future__ import annotations

from pathlib import Path

import yaml

from services.cli import SERVICES
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def known_variables() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(f"CONDA_STORE_{name.upper()}")
        alias = field.validation_alias
        if alias is not None:
            names.update(getattr(alias, "choices", [alias]))
    return names


def test_compose_services_run_real_commands_with_real_settings() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    ours = {
        k: v for k, v in compose["services"].items() if v.get("image") == "conda-store-es:latest"
    }
    assert {v["command"][0] for v in ours.values()} == set(SERVICES)
    known = known_variables()
    for name, service in ours.items():
        unknown = {k for k in service["environment"] if k.startswith("CONDA_STORE_")} - known
        assert not unknown, f"{name} sets unknown settings {unknown}"
    for infra in ("nats", "postgres", "minio"):
        assert infra in compose["services"]
    assert "-js" in compose["services"]["nats"]["command"]


def test_kubernetes_manifests_use_real_commands_and_settings() -> None:
    docs = list(yaml.safe_load_all((ROOT / "deploy/kubernetes/conda-store.yaml").read_text()))
    known = known_variables()
    config_keys = set()
    for doc in docs:
        if doc["kind"] in ("ConfigMap", "Secret"):
            config_keys |= set(doc.get("data") or doc.get("stringData"))
    assert config_keys <= known, config_keys - known
    commands = {
        c["args"][0]
        for doc in docs
        if doc["kind"] == "Deployment"
        for c in doc["spec"]["template"]["spec"]["containers"]
    }
    assert commands == set(SERVICES)
