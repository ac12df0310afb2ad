"""compose.yaml and the Kubernetes manifests only use commands and settings that exist."""

from __future__ import annotations

import re
import subprocess
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


def debian_packages(mode: str) -> dict[str, str]:
    """What ``./dev <mode>`` makes sure is installed: {probe: package}, read by bash itself."""
    arrays = "${DEBIAN_RUNTIME[@]}" + (" ${DEBIAN_TEST[@]}" if mode == "test" else "")
    script = (
        f'eval "$(grep -E "^DEBIAN_(RUNTIME|TEST)=" {ROOT / "dev"})"; '
        f'for e in {arrays}; do echo "$e"; done'
    )
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    entries = [line.rsplit(":", 1) for line in out.stdout.split()]
    return {probe: package for probe, package in entries}


def test_dev_up_installs_what_images_need_at_runtime() -> None:
    """A fresh machine running ``./dev up`` gets the offline image base's busybox; the OCI
    clients (skopeo, umoci, runc) and the reference registry are only for tests."""
    from services.registry.base import BUSYBOX_CANDIDATES, BUSYBOX_PACKAGE

    runtime = debian_packages("up")
    busybox = {p for probe, p in runtime.items() if set(probe.split("|")) & set(BUSYBOX_CANDIDATES)}
    assert busybox == {BUSYBOX_PACKAGE}, runtime
    test_only = set(debian_packages("test").values()) - set(runtime.values())
    assert {"skopeo", "umoci", "runc", "docker-registry", "chromium"} <= test_only
    for tool in ("skopeo", "umoci", "runc"):
        used = [
            path
            for path in (ROOT / "services").rglob("*.py")
            if re.search(rf"[\"']{tool}[\"']", path.read_text())
        ]
        assert not used, f"{tool} is a test client, yet services run it: {used}"


def test_service_image_installs_what_images_need_at_runtime() -> None:
    from services.registry.base import BUSYBOX_PACKAGE

    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    install = re.search(r"apt-get install[^\n]*(?:\\\n[^\n]*)*", dockerfile)
    assert install is not None
    assert BUSYBOX_PACKAGE in install.group(0).split()
