"""A node's server.properties: quorum, listeners, and replication by cluster size."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.kafka.cluster import ClusterLayout
from scripts.kafka.commands import up
from scripts.kafka.properties import NodeAddress, node_properties, replication_for
from scripts.kafka.topics import new_topic

NODES = [NodeAddress(i, "127.0.0.1", 9091 + i, 19091 + i) for i in (1, 2, 3)]


def test_every_node_of_a_cluster_votes_and_replicates_three_times() -> None:
    properties = node_properties(NODES[1], NODES, Path("/data"))

    assert properties["node.id"] == "2"
    assert properties["controller.quorum.voters"] == (
        "1@127.0.0.1:19092,2@127.0.0.1:19093,3@127.0.0.1:19094"
    )
    assert properties["listeners"] == "PLAINTEXT://127.0.0.1:9093,CONTROLLER://127.0.0.1:19093"
    assert properties["default.replication.factor"] == "3"
    assert properties["min.insync.replicas"] == "2"
    assert properties["offsets.topic.replication.factor"] == "3"


def test_a_single_broker_keeps_one_replica() -> None:
    properties = node_properties(NODES[0], NODES[:1], Path("/data"))

    assert properties["default.replication.factor"] == "1"
    assert properties["min.insync.replicas"] == "1"
    assert replication_for(1) == (1, 1)


def test_extra_listener_properties_are_appended_and_others_set() -> None:
    extra = {
        "listeners": "SASL_SSL://127.0.0.1:9500",
        "listener.security.protocol.map": "SASL_SSL:SASL_SSL",
        "sasl.enabled.mechanisms": "SCRAM-SHA-512",
    }

    properties = node_properties(NODES[0], NODES, Path("/data"), extra=extra)

    assert properties["listeners"].endswith(",SASL_SSL://127.0.0.1:9500")
    assert properties["listeners"].startswith("PLAINTEXT://127.0.0.1:9092")
    assert properties["listener.security.protocol.map"].endswith(",SASL_SSL:SASL_SSL")
    assert properties["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"


def test_topics_on_three_brokers_ask_for_three_replicas_and_two_in_sync() -> None:
    topic = new_topic("events", 6, brokers=3)

    assert (topic.num_partitions, topic.replication_factor) == (6, 3)
    assert topic.topic_configs["min.insync.replicas"] == "2"
    assert new_topic("events", 6, brokers=1).replication_factor == 1


def test_a_cluster_layout_survives_its_round_trip() -> None:
    layout = ClusterLayout("id-1", tuple(NODES))

    assert ClusterLayout.load(layout.dump()) == layout


@pytest.mark.parametrize("value", ["0", "three", "-1"])
def test_a_bad_broker_count_is_refused_by_name(
    value: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("KAFKA_BROKERS", value)

    assert up(tmp_path) == 1
    assert "KAFKA_BROKERS" in capsys.readouterr().err
