"""The forwarder across a Kafka outage: the broker goes away mid-stream and comes back."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.integration.forwarder_service.forwarder_it import (
    Forwarder,
    all_committed,
    fast_env,
    produce_events,
    wait_until,
)
from tests.support.collector import RunningCollector
from tests.support.kafka import PrivateBroker, create_topic, unique_name

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(120)]


async def test_a_broker_restart_mid_stream_loses_nothing_and_the_forwarder_carries_on(
    private_broker: PrivateBroker, collector: RunningCollector, tmp_path: Path
) -> None:
    bootstrap = private_broker.bootstrap
    events = await create_topic(bootstrap, unique_name("outage-events"), partitions=2)
    dlq = await create_topic(bootstrap, unique_name("outage-dlq"))
    group = unique_name("outage-group")
    env = fast_env(bootstrap, topic=events, dlq=dlq, group=group, collector_url=collector.base_url)
    env["FORWARDER_BATCH_MAX_EVENTS"] = "20"
    # Slow answers keep records in flight when the broker goes away.
    await collector.inject({"delay_s": 0.2})
    before = await produce_events(bootstrap, events, 400)
    forwarder = Forwarder(env, tmp_path / "forwarder.log", ready_path="/readyz")
    await forwarder.start()
    try:
        await collector.wait_for_count(40, timeout_s=30)

        await asyncio.to_thread(private_broker.stop)
        await collector.clear_faults()

        async def commits_failing() -> bool:
            return (
                await forwarder.metric("tracking_forwarder_commit_failures_total", reason="timeout")
                > 0
            )

        await wait_until(commits_failing, timeout_s=45, what="a commit failing while Kafka is away")
        await asyncio.to_thread(private_broker.start)
        after = await produce_events(bootstrap, events, 200)
        await wait_until(
            lambda: all_committed(bootstrap, group, events),
            timeout_s=60,
            what="commit of every partition's end after the restart",
        )

        assert set(await collector.eids()) == set(before + after)  # none lost
        assert await forwarder.metric("tracking_forwarder_events_dead_lettered_total") == 0
        status, _ = await forwarder.get("/readyz")
        assert status == 200
    finally:
        code = await forwarder.stop()
    assert code == 0, forwarder.log()
