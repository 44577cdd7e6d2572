"""The project's own broker: a real Kafka that stores, replays and survives a restart."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from scripts.kafka.broker import KafkaBroker, free_port
from tests.support.kafka import PrivateBroker, consume_all, create_topic, produce, unique_name

pytestmark = pytest.mark.kafka


async def test_session_broker_round_trips_records(kafka_bootstrap: str) -> None:
    topic = await create_topic(kafka_bootstrap, unique_name("harness"), partitions=3)
    values = [f"event-{i}".encode() for i in range(30)]

    await produce(kafka_bootstrap, topic, values, headers=[("h", b"v")])
    records = await consume_all(kafka_bootstrap, topic, expected=30)

    assert sorted(r.value for r in records) == sorted(values)
    assert {r.partition for r in records} <= {0, 1, 2}
    assert all(list(r.headers) == [("h", b"v")] for r in records)


async def test_private_broker_keeps_acknowledged_records_across_a_restart(
    private_broker: PrivateBroker,
) -> None:
    topic = await create_topic(private_broker.bootstrap, unique_name("restart"))
    await produce(private_broker.bootstrap, topic, [b"before"])

    private_broker.stop()
    private_broker.start()
    await produce(private_broker.bootstrap, topic, [b"after"])

    records = await consume_all(private_broker.bootstrap, topic, expected=2)
    assert [r.value for r in records] == [b"before", b"after"]


def test_storage_formats_with_a_cluster_id_that_starts_with_a_dash(tmp_path: Path) -> None:
    # One random id in 64 starts with "-"; passed as its own argument it read as an option.
    cluster_id = base64.urlsafe_b64encode(b"\xf8" + bytes(15)).rstrip(b"=").decode()
    assert cluster_id.startswith("-")
    broker = KafkaBroker(tmp_path, f"127.0.0.1:{free_port()}")

    broker.format(cluster_id)

    meta = next(tmp_path.rglob("meta.properties")).read_text()
    assert f"cluster.id={cluster_id}" in meta
