"""Several NATS servers: the URL list clients take, and the configuration of a cluster's nodes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared.bus.jetstream import nats_servers, stream_config
from shared.embedded.nats import cluster_url, nats_cluster
from shared.settings import Settings


def test_a_comma_separated_url_names_every_server() -> None:
    url = "nats://a:4222, nats://b:4222,nats://c:4222,"
    assert nats_servers(url) == ["nats://a:4222", "nats://b:4222", "nats://c:4222"]
    assert nats_servers("nats://127.0.0.1:4222") == ["nats://127.0.0.1:4222"]
    with pytest.raises(ValueError, match="names no server"):
        nats_servers(" , ")


def test_each_node_routes_to_the_others_and_keeps_its_own_store(tmp_path: Path) -> None:
    nodes = nats_cluster(tmp_path, size=3)
    configs = [json.loads(node.config()) for node in nodes]
    names = [c["server_name"] for c in configs]
    assert len(set(names)) == 3
    listens = [c["cluster"]["listen"] for c in configs]
    for config, listen in zip(configs, listens, strict=True):
        routes = {r.removeprefix("nats-route://") for r in config["cluster"]["routes"]}
        assert routes == set(listens) - {listen}
        assert Path(config["jetstream"]["store_dir"]).parent == tmp_path
    assert len({c["jetstream"]["store_dir"] for c in configs}) == 3
    assert nats_servers(cluster_url(nodes)) == [node.url for node in nodes]


def test_the_stream_is_replicated_as_configured() -> None:
    assert stream_config(Settings()).num_replicas == 1
    assert stream_config(Settings(nats_replicas=3)).num_replicas == 3
