"""``forwarder-service replay`` round trip: dead letters back to the events topic and on."""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from tests.integration.forwarder_service.conftest import StartForwarder, Topics
from tests.integration.forwarder_service.forwarder_it import produce_events
from tests.support.collector import RunningCollector
from tests.support.kafka import consume_all
from tests.support.services import BIN

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(90)]


async def _replay(kafka_bootstrap: str, topics: Topics, *args: str) -> str:
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "EVENTS_TOPIC": topics.events,
        "DLQ_TOPIC": topics.dlq,
        "PATH": str(BIN),
    }
    result = await asyncio.to_thread(
        subprocess.run,
        [str(BIN / "forwarder-service"), "replay", "--no-progress", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


async def test_dead_letters_are_replayed_to_the_events_topic_and_delivered(
    kafka_bootstrap: str,
    collector: RunningCollector,
    topics: Topics,
    start_forwarder: StartForwarder,
) -> None:
    eids = await produce_events(kafka_bootstrap, topics.events, 80, poison_at=[5])
    rejected = {eids[3], eids[40], eids[60]}
    await collector.inject({"status": 400, "when_eid": sorted(rejected)})
    forwarder = await start_forwarder()
    await collector.wait_for_count(len(eids) - len(rejected), timeout_s=60)
    await consume_all(kafka_bootstrap, topics.dlq, expected=4, timeout_s=30)

    # Dry run: counts, produces nothing.
    out = await _replay(kafka_bootstrap, topics, "--dry-run")
    assert "would replay 4" in out
    assert "invalid_record=1" in out
    assert "non_retryable_status=3" in out
    # Filters that match nothing.
    out = await _replay(kafka_bootstrap, topics, "--until", "2000-01-01T00:00:00")
    assert "replayed 0" in out
    out = await _replay(kafka_bootstrap, topics, "--error-class", "oversize")
    assert "replayed 0" in out

    # The collector is fixed; replay only the rejected ones (not the undecodable record).
    await collector.clear_faults()
    out = await _replay(
        kafka_bootstrap, topics, "--error-class", "non_retryable_status", "--since", "2000-01-01"
    )
    assert "replayed 3" in out
    await collector.wait_for_count(len(eids), timeout_s=30)
    assert set(await collector.eids()) == set(eids)
    replayed = [
        record
        for record in await consume_all(kafka_bootstrap, topics.events, expected=83)
        if any(name == "x-forwarder.replayed-from" for name, _ in record.headers)
    ]
    assert len(replayed) == 3
    for record in replayed:
        names = {name for name, _ in record.headers}
        assert "event-id" in names
        assert "traceparent" in names
        assert not any(name.startswith("__connect.errors.") for name in names)
    assert await forwarder.stop() == 0, forwarder.log()
