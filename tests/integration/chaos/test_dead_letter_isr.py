"""Two nodes down, so the dead-letter topic cannot acknowledge (fewer in-sync replicas than
``min.insync.replicas``): the forwarder stops without committing past the records it could not
dead-letter, as on one broker, and its successor carries on once the nodes are back."""

from __future__ import annotations

import asyncio
import signal

import pytest

from scripts.kafka.cluster import KafkaCluster
from tests.integration.chaos.chaos_it import FULL, ChaosPipeline
from tests.integration.chaos.conftest import Record
from tests.integration.forwarder_service.forwarder_it import (
    POISON,
    committed,
    end_offsets,
    produce_events,
    wait_until,
)
from tests.support.cluster import leaders, wait_in_sync
from tests.support.kafka import consume_all

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.chaos,
    pytest.mark.slow,
    pytest.mark.timeout(900),
    pytest.mark.skipif(not FULL, reason="make chaos runs it (CHAOS_FULL=1)"),
]

PHASE = 1500
POISON_AT = (5, 15)


async def test_dead_letters_unacknowledged_stop_commits_until_the_nodes_return(
    cluster: KafkaCluster, pipeline: ChaosPipeline, record_result: Record
) -> None:
    await pipeline.start(partitions=1, FORWARDER_DLQ_TIMEOUT_S="5")
    first = pipeline.forwarders[0]
    load = await pipeline.running_load(PHASE)
    # A setup failure at the collector pauses the forwarder, so the poison waits in the topic.
    await pipeline.collector.inject({"status": 401})
    await wait_until(lambda: first.metric("tracking_forwarder_paused_partitions"), timeout_s=30)
    valid = await produce_events(cluster.bootstrap, pipeline.topics.events, 20, poison_at=POISON_AT)
    survivor = (await leaders(cluster.bootstrap, pipeline.topics.events))[0]
    victims = [node for node in cluster.nodes if node != survivor]
    for node in victims:
        await asyncio.to_thread(cluster.kill, node, signal.SIGKILL)

    await pipeline.collector.clear_faults()
    assert await first.wait_exit(120) == 1, first.log()
    assert "dead-letter topic did not acknowledge" in first.log()
    for node in victims:
        await asyncio.to_thread(cluster.restart, node)
    await wait_in_sync(cluster.bootstrap, timeout_s=180)
    end = (await end_offsets(cluster.bootstrap, pipeline.topics.events))[0]
    records = await consume_all(cluster.bootstrap, pipeline.topics.events, expected=end)
    poisons = [r.offset for r in records if r.value == POISON]
    assert (await committed(cluster.bootstrap, pipeline.group)).get(0, 0) <= min(poisons)

    await pipeline.add_forwarder(FORWARDER_DLQ_TIMEOUT_S="5")  # what a restart policy does
    dead = await consume_all(cluster.bootstrap, pipeline.dlq, expected=len(POISON_AT), timeout_s=60)
    assert len(dead) >= len(POISON_AT)
    load.report.acknowledged.extend(valid)
    await pipeline.finish("dead_letter_isr_loss", load, record_result)
