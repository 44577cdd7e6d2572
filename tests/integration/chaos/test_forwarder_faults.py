"""Forwarder faults: the group scales out from one instance to three, then one is SIGKILLed and
another SIGTERMed, while events flow and the collector is slow."""

from __future__ import annotations

import asyncio
import signal

import pytest

from scripts.kafka.cluster import KafkaCluster
from tests.integration.chaos.chaos_it import FULL, ChaosPipeline
from tests.integration.chaos.conftest import Record

pytestmark = [pytest.mark.kafka, pytest.mark.chaos, pytest.mark.slow, pytest.mark.timeout(600)]

PHASE = 1500 if FULL else 150
SLOW_COLLECTOR_S = 0.2


async def test_forwarder_scale_out_and_crash_loses_nothing(
    cluster: KafkaCluster, pipeline: ChaosPipeline, record_result: Record
) -> None:
    assert len(cluster.running()) == len(cluster.nodes)
    await pipeline.start(partitions=6, forwarders=1)
    await pipeline.collector.inject({"delay_s": SLOW_COLLECTOR_S})
    load = await pipeline.running_load(PHASE)

    await asyncio.gather(pipeline.add_forwarder(), pipeline.add_forwarder())
    await load.wait_for_acknowledged(len(load.report.acknowledged) + PHASE, timeout_s=60)
    _, crashed, stopped = pipeline.forwarders
    crashed.signal(signal.SIGKILL)
    assert await stopped.stop(timeout_s=30) == 0  # a clean drain and exit
    await crashed.wait_exit(10)
    await load.wait_for_acknowledged(len(load.report.acknowledged) + PHASE, timeout_s=60)
    await pipeline.collector.clear_faults()

    result = await pipeline.finish("forwarder_scale_crash", load, record_result)
    assert result.load.refused == 0  # the API never noticed
