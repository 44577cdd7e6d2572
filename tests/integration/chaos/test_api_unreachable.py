"""Kafka unreachable from the API alone (its connections cut, the forwarder's kept): the API
answers 503 with ``Retry-After`` within its produce deadline, never hangs, shows the outage in
its metrics, and recovers on its own when the network returns."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from scripts.kafka.cluster import KafkaCluster
from tests.integration.chaos.chaos_it import (
    FULL,
    PRODUCE_TIMEOUT_S,
    ChaosPipeline,
)
from tests.integration.chaos.conftest import Record
from tests.support.cluster import ClusterRelays

pytestmark = [
    pytest.mark.kafka,
    pytest.mark.chaos,
    pytest.mark.slow,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not FULL, reason="make chaos runs it (CHAOS_FULL=1)"),
]

PHASE = 1500
REFUSALS = 20


async def _metric(admin: str, name: str) -> float:
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(f"{admin}/metrics")).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + " ", name + "{"))
    )


async def test_api_cut_off_from_kafka_refuses_in_time_and_recovers(
    cluster: KafkaCluster,
    cluster_relays: ClusterRelays,
    pipeline: ChaosPipeline,
    record_result: Record,
) -> None:
    await pipeline.start(KAFKA_BOOTSTRAP_SERVERS=cluster_relays.bootstrap)
    load = await pipeline.running_load(PHASE)
    errors_before = await _metric(pipeline.api_admin, "tracking_api_kafka_errors_total")

    await asyncio.to_thread(cluster_relays.cut)
    async with asyncio.timeout(120):
        while load.report.refused < REFUSALS:  # noqa: ASYNC110 - the load task counts them
            await asyncio.sleep(0.1)
    assert await _metric(pipeline.api_admin, "tracking_api_kafka_available") == 0
    # An outage every replica shares must not empty the Service: the API stays ready and
    # answers 503 itself (with Retry-After and CORS headers, which an ingress's 502 lacks).
    assert await _metric(pipeline.api_admin, "tracking_api_ready") == 1
    assert await _metric(pipeline.api_admin, "tracking_api_kafka_errors_total") > errors_before
    await asyncio.to_thread(cluster_relays.restore)
    # Nobody restarts anything: the API reconnects by itself.
    await load.wait_for_acknowledged(len(load.report.acknowledged) + PHASE, timeout_s=120)

    result = await pipeline.finish("api_unreachable", load, record_result)
    assert result.load.slowest_s < PRODUCE_TIMEOUT_S + 3  # answered within the deadline
    assert await _metric(pipeline.api_admin, "tracking_api_kafka_available") == 1
