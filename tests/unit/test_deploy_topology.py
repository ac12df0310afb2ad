"""compose.yaml and deploy/kubernetes/ describe the many-machines topology that
tests/faults/test_many_machines.py runs: a NATS cluster of three with the stream replicated on
all three, API and registry replicas behind a load balancer, two of every worker, relay and
projector with a standby, caches and the store directory on volumes, probes and resource
requests on the ports the services really listen on."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from shared.settings import Settings
from tests.harness.haproxy import haproxy_binary
from tests.unit.test_deploy import IMAGE, ROOT, kubernetes_documents, our_containers

DEFAULTS = Settings()
# where each service answers its probes, by default
PROBE_PORTS = {
    "api": DEFAULTS.api_port,
    "ui": DEFAULTS.ui_port,
    "registry": DEFAULTS.registry_port,
    "solver": DEFAULTS.solver_health_port,
    "packer": DEFAULTS.packer_health_port,
    "relay": DEFAULTS.relay_health_port,
    "projector": DEFAULTS.projector_health_port,
}
AT_LEAST_TWO = ("api", "registry", "solver", "packer", "relay", "projector")
NATS_NODES = 3


def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def nats_servers(url: str) -> list[str]:
    return [u for u in url.split(",") if u]


# --- compose --------------------------------------------------------------------------------


def test_compose_runs_a_nats_cluster_of_three_with_the_stream_on_all_three() -> None:
    services = compose()["services"]
    nodes = {name: s for name, s in services.items() if s.get("image", "").startswith("nats:")}
    assert len(nodes) == NATS_NODES
    for name, node in nodes.items():
        args = node["command"]
        assert "-js" in args and args[args.index("--name") + 1] == name
        routes = args[args.index("--routes") + 1].split(",")
        assert {r.split("//")[1].split(":")[0] for r in routes} == set(nodes)
        assert any(v.endswith(":/data") for v in node["volumes"])  # JetStream's store
        assert node["healthcheck"]["test"]
    ours = [s for s in services.values() if s.get("image") == IMAGE]
    for service in ours:
        env = service["environment"]
        hosts = [u.split("//")[1].split(":")[0] for u in nats_servers(env["CONDA_STORE_NATS_URL"])]
        assert sorted(hosts) == sorted(nodes)
        assert int(env["CONDA_STORE_NATS_REPLICAS"]) == NATS_NODES


def test_compose_scales_every_service_and_balances_api_and_registry() -> None:
    services = compose()["services"]
    by_command = {s["command"][0]: s for s in services.values() if s.get("image") == IMAGE}
    for name in AT_LEAST_TWO:
        assert by_command[name].get("deploy", {}).get("replicas", 1) >= 2, name
        assert "ports" not in by_command[name], f"{name} replicas are reached through the lb"
    lb = services["lb"]
    assert lb["image"].startswith("haproxy")
    mounted = [v.split(":")[0] for v in lb["volumes"]]
    config = (ROOT / mounted[0]).resolve().read_text()
    for name in ("api", "registry"):
        port = PROBE_PORTS[name]
        assert re.search(rf"server-template \S+ \d+ {name}:{port}\b", config), name
        assert f":{port}:{port}" in " ".join(lb["ports"]) or f"{port}:{port}" in lb["ports"]
    for header in ("X-Forwarded-Proto", "X-Forwarded-Host"):
        assert header in config
    assert "option forwardfor" in config  # X-Forwarded-For
    check = subprocess.run(
        [haproxy_binary(), "-c", "-f", str(ROOT / mounted[0])], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr  # haproxy itself accepts it


def test_compose_probes_and_volumes_are_where_the_services_are() -> None:
    services = compose()["services"]
    for service in (s for s in services.values() if s.get("image") == IMAGE):
        name = service["command"][0]
        probe = " ".join(service["healthcheck"]["test"])
        assert f"localhost:{PROBE_PORTS[name]}/" in probe, name
    packer = next(s for s in services.values() if s.get("command") == ["packer"])
    targets = {v.split(":")[1] for v in packer["volumes"]}
    store = packer["environment"]["CONDA_STORE_STORE_DIRECTORY"]
    assert {"/var/lib/conda-store/cache", store} <= targets
    for worker in ("solver", "packer", "registry"):
        service = next(s for s in services.values() if s.get("command") == [worker])
        assert service["deploy"]["resources"]["reservations"], worker
        assert any(v.endswith(":/var/lib/conda-store/cache") for v in service["volumes"])


# --- Kubernetes -----------------------------------------------------------------------------


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_kubernetes_nats_is_a_cluster_of_three_routed_to_each_other() -> None:
    docs = kubernetes_documents()
    nats = by_kind(docs, "StatefulSet")["nats"]
    assert nats["spec"]["replicas"] == NATS_NODES
    service = nats["spec"]["serviceName"]
    conf = by_kind(docs, "ConfigMap")["nats-config"]["data"]["nats.conf"]
    routes = re.findall(r"nats://(nats-\d+)\." + service + r":6222", conf)
    assert sorted(routes) == [f"nats-{i}" for i in range(NATS_NODES)]
    assert "jetstream" in conf and "server_name" in conf
    assert nats["spec"]["volumeClaimTemplates"]
    settings = by_kind(docs, "ConfigMap")["conda-store"]["data"]
    servers = nats_servers(settings["CONDA_STORE_NATS_URL"])
    assert sorted(s.split("//")[1].split(".")[0] for s in servers) == sorted(routes)
    assert int(settings["CONDA_STORE_NATS_REPLICAS"]) == NATS_NODES


def test_kubernetes_scales_every_service_with_probes_and_requests() -> None:
    docs = kubernetes_documents()
    deployments = {
        c["args"][0]: d
        for d in by_kind(docs, "Deployment").values()
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    for name in AT_LEAST_TWO:
        assert deployments[name]["spec"]["replicas"] >= 2, name
    for container in our_containers(docs):
        name = container["args"][0]
        for probe in ("livenessProbe", "readinessProbe"):
            assert container[probe]["httpGet"]["port"] == PROBE_PORTS[name], (name, probe)
        assert container["resources"]["requests"], name
    for statefulset in by_kind(docs, "StatefulSet").values():
        for container in statefulset["spec"]["template"]["spec"]["containers"]:
            assert container["livenessProbe"] and container["readinessProbe"]
            assert container["resources"]["requests"]


def test_kubernetes_balances_api_and_registry_and_mounts_caches_and_the_store() -> None:
    docs = kubernetes_documents()
    deployments = by_kind(docs, "Deployment")
    services = by_kind(docs, "Service")
    backends = {
        path["backend"]["service"]["name"]
        for ingress in by_kind(docs, "Ingress").values()
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    for name in ("api", "registry"):
        deployment = deployments[f"conda-store-{name}"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        routed = [s for s in services.values() if s["spec"]["selector"].items() <= labels.items()]
        assert routed and routed[0]["metadata"]["name"] in backends, name
        assert routed[0]["spec"]["ports"][0]["targetPort"] == PROBE_PORTS[name]
    packer = deployments["conda-store-packer"]["spec"]["template"]["spec"]
    mounts = {m["mountPath"]: m["name"] for m in packer["containers"][0]["volumeMounts"]}
    volumes = {v["name"]: v for v in packer["volumes"]}
    directory = by_kind(docs, "ConfigMap")["conda-store"]["data"]["CONDA_STORE_STORE_DIRECTORY"]
    store = volumes[mounts[directory]]["persistentVolumeClaim"]["claimName"]
    claim = by_kind(docs, "PersistentVolumeClaim")[store]
    assert "ReadWriteMany" in claim["spec"]["accessModes"]  # shared by every packer
    assert "/var/lib/conda-store/cache" in mounts
    data_dir = Path("/var/lib/conda-store")
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert f"CONDA_STORE_DATA_DIR={data_dir}" in dockerfile  # the mounts sit in the data dir
