"""compose.yaml and the Kubernetes manifests only use commands and settings that exist."""

from __future__ import annotations

import importlib
import pkgutil
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml
from pydantic_settings import BaseSettings

import services
import shared
from services.cli import SERVICES
from shared.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "conda-store-es:latest"


def settings_classes() -> set[type[BaseSettings]]:
    """Every settings class defined in the project's modules (all imported first)."""
    for package in (shared, services):
        for module in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
            if not module.name.endswith("__main__"):  # that would run a service
                importlib.import_module(module.name)
    found: set[type[BaseSettings]] = set()
    pending = [BaseSettings]
    while pending:
        for sub in pending.pop().__subclasses__():
            pending.append(sub)
            if sub.__module__.startswith(("shared.", "services.")):
                found.add(sub)
    return found


def known_variables() -> set[str]:
    """The environment variables some settings class of the project reads."""
    names = set()
    for cls in settings_classes():
        prefix = cls.model_config.get("env_prefix", "")
        for name, field in cls.model_fields.items():
            names.add(f"{prefix}{name}".upper())
            alias = field.validation_alias
            if alias is not None:
                names.update(getattr(alias, "choices", [alias]))
    return names


def kubernetes_documents() -> list[dict[str, Any]]:
    return [
        doc
        for path in sorted((ROOT / "deploy" / "kubernetes").glob("*.yaml"))
        for doc in yaml.safe_load_all(path.read_text())
        if doc
    ]


def our_containers(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        container
        for doc in docs
        if doc["kind"] == "Deployment"
        for container in doc["spec"]["template"]["spec"]["containers"]
        if container["image"] == IMAGE
    ]


def test_one_settings_model_knows_every_variable() -> None:
    """API-only and auth variables are in the one model too (they were separate classes)."""
    assert settings_classes() == {Settings}
    known = known_variables()
    assert {"CONDA_STORE_NATS_URL", "NATS_URL", "CONDA_STORE_NATS_REPLICAS"} <= known
    assert {"CONDA_STORE_ENABLE_UI", "CONDA_STORE_MAX_PAGE_SIZE"} <= known
    assert {"CONDA_STORE_PREDEFINED_TOKENS", "CONDA_STORE_OAUTH_PROVIDER"} <= known
    assert "CONDA_STORE_NO_SUCH_SETTING" not in known


def test_compose_services_run_real_commands_with_real_settings() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    ours = {k: v for k, v in compose["services"].items() if v.get("image") == IMAGE}
    assert {v["command"][0] for v in ours.values()} == set(SERVICES)
    known = known_variables()
    for name, service in ours.items():
        unknown = {k for k in service["environment"] if k.startswith("CONDA_STORE_")} - known
        assert not unknown, f"{name} sets unknown settings {unknown}"
    for infra in ("postgres", "minio"):
        assert infra in compose["services"]


def test_kubernetes_manifests_use_real_commands_and_settings() -> None:
    docs = kubernetes_documents()
    known = known_variables()
    sources = {
        (d["kind"], d["metadata"]["name"]): d for d in docs if d["kind"] in ("ConfigMap", "Secret")
    }
    containers = our_containers(docs)
    for container in containers:
        names = {e["name"] for e in container.get("env", [])}
        for ref in container.get("envFrom", []):
            kind, name = (
                ("ConfigMap", ref["configMapRef"]["name"])
                if "configMapRef" in ref
                else ("Secret", ref["secretRef"]["name"])
            )
            source = sources[(kind, name)]
            names |= set(source.get("data") or source.get("stringData"))
        assert names <= known, f"{container['name']} sets unknown settings {names - known}"
    assert {c["args"][0] for c in containers} == set(SERVICES)


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
