"""The SASL_SSL listener the scripts add to a node, for one broker and for the cluster."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.kafka import commands
from scripts.kafka.properties import NodeAddress, node_properties
from scripts.kafka.security import SECURE_PORT_OFFSET, BrokerSecurity


def test_the_listener_is_added_next_to_plaintext_with_users_and_pem_stores(tmp_path: Path) -> None:
    security = BrokerSecurity.create(tmp_path, hostnames=["localhost"], users={"tracking": 'pa"ss'})
    node = NodeAddress(1, "127.0.0.1", 9092, 9093)

    properties = node_properties(
        node, [node], tmp_path / "data", extra=security.listener_properties(10092)
    )

    assert properties["listeners"] == (
        "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093,SASL_SSL://localhost:10092"
    )
    assert properties["advertised.listeners"].endswith(",SASL_SSL://localhost:10092")
    assert properties["inter.broker.listener.name"] == "PLAINTEXT"
    assert properties["ssl.keystore.type"] == properties["ssl.truststore.type"] == "PEM"
    assert 'user_tracking="pa\\"ss"' in properties["listener.name.sasl_ssl.plain.sasl.jaas.config"]
    assert "--add-scram" in security.format_args()
    assert 'SCRAM-SHA-512=[name=tracking,password=pa"ss]' in security.format_args()


def test_kafka_up_with_sasl_ssl_secures_every_node_of_the_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")

    cluster = commands._cluster_at(tmp_path, 19092, 3)

    for node in cluster.nodes.values():
        assert node.extra_properties is not None
        port = node.port + SECURE_PORT_OFFSET
        assert node.extra_properties["listeners"] == f"SASL_SSL://localhost:{port}"
        assert "--add-scram" in node.format_args
    env = (cluster.workdir / "security" / "client.env").read_text()
    assert "KAFKA_BOOTSTRAP_SERVERS=localhost:20092,localhost:20093,localhost:20094" in env


def test_kafka_up_without_sasl_ssl_adds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KAFKA_SECURITY_PROTOCOL", raising=False)

    broker = commands._single_at(tmp_path, "127.0.0.1:19092")

    assert broker.extra_properties is None
    assert broker.format_args == ()
    assert not (broker.workdir / "security").exists()
