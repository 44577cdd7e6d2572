"""Broker faults under load: a leader SIGKILLed mid-stream, and a rolling restart.

Every scenario posts events with unique ids through the ``api-service`` process while the
fault runs; afterwards every event the API acknowledged must be at the collector.
"""

from __future__ import annotations

import asyncio
import signal

import pytest

from scripts.kafka.cluster import KafkaCluster
from tests.integration.chaos.chaos_it import FULL, ChaosPipeline
from tests.integration.chaos.conftest import Record
from tests.support.cluster import leaders, wait_in_sync

pytestmark = [pytest.mark.kafka, pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(600)]

# Events acknowledged in each phase: more in `make chaos`.
PHASE = 1500 if FULL else 150


async def test_leader_sigkilled_under_load_loses_nothing(
    cluster: KafkaCluster, pipeline: ChaosPipeline, record_result: Record
) -> None:
    await pipeline.start()
    load = await pipeline.running_load(PHASE)

    victim = (await leaders(cluster.bootstrap, pipeline.topics.events))[0]
    await asyncio.to_thread(cluster.kill, victim)  # SIGKILL: no controlled shutdown
    # The load goes on: new leaders take over once the dead node is fenced.
    await load.wait_for_acknowledged(len(load.report.acknowledged) + PHASE, timeout_s=120)
    await asyncio.to_thread(cluster.restart, victim)
    await wait_in_sync(cluster.bootstrap, [pipeline.topics.events], timeout_s=120)
    await load.wait_for_acknowledged(len(load.report.acknowledged) + PHASE, timeout_s=60)

    await pipeline.finish("leader_failover", load, record_result)


async def test_rolling_restart_under_load_loses_nothing(
    cluster: KafkaCluster, pipeline: ChaosPipeline, record_result: Record
) -> None:
    await pipeline.start()
    load = await pipeline.running_load(PHASE)

    # `make test` restarts one node (the path is the same for each); `make chaos` all three.
    for node_id in list(cluster.nodes) if FULL else [1]:
        await asyncio.to_thread(cluster.kill, node_id, signal.SIGTERM)
        await asyncio.to_thread(cluster.restart, node_id)
        await wait_in_sync(cluster.bootstrap, timeout_s=120)  # every topic, internal ones too
        await load.wait_for_acknowledged(len(load.report.acknowledged) + PHASE // 2, timeout_s=60)

    await pipeline.finish("rolling_restart", load, record_result)
