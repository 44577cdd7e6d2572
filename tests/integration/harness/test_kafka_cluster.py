"""The three-node cluster: replicated topics, and a node killed with SIGKILL that recovers."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from scripts.kafka.cluster import KafkaCluster
from tests.support.cluster import leaders, wait_in_sync
from tests.support.kafka import consume_all, create_topic, produce, unique_name

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(300)]


async def _topic_configs(bootstrap: str, topic: str) -> dict[str, str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
    finally:
        await admin.close()
    entries = response.resources[0][4]
    return {entry[0]: entry[1] for entry in entries}


async def test_topics_on_a_cluster_get_three_replicas_and_two_in_sync(
    cluster: KafkaCluster,
) -> None:
    topic = await create_topic(cluster.bootstrap, unique_name("replicated"), partitions=3)

    await wait_in_sync(cluster.bootstrap, [topic])
    configs = await _topic_configs(cluster.bootstrap, topic)

    assert configs["min.insync.replicas"] == "2"
    assert set((await leaders(cluster.bootstrap, topic)).values()) <= set(cluster.nodes)


async def test_a_sigkilled_node_recovers_its_log_and_rejoins(cluster: KafkaCluster) -> None:
    topic = await create_topic(cluster.bootstrap, unique_name("crash"))
    await wait_in_sync(cluster.bootstrap, [topic])
    await produce(cluster.bootstrap, topic, [b"before"])
    victim = (await leaders(cluster.bootstrap, topic))[0]

    await asyncio.to_thread(cluster.kill, victim)
    # Two of three replicas remain: acks=all writes still succeed.
    await produce(cluster.bootstrap, topic, [b"during"])
    await asyncio.to_thread(cluster.restart, victim)
    await wait_in_sync(cluster.bootstrap, [topic])
    # With another node gone, the victim's recovered copy serves the records.
    other = next(node for node in cluster.nodes if node != victim)
    await asyncio.to_thread(cluster.kill, other)

    records = await consume_all(cluster.bootstrap, topic, expected=2, timeout_s=60)
    assert [r.value for r in records] == [b"before", b"during"]
