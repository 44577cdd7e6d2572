"""The whole path on real parts: API -> Kafka -> forwarder -> collector, each its own process."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support.collector import RunningCollector
from tests.support.kafka import create_topic, unique_name
from tests.support.services import ServiceProcess, free_port

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

API_KEY = "e2e-" + uuid.uuid4().hex


@pytest.fixture
async def topics(kafka_bootstrap: str) -> dict[str, str]:
    """Fresh topics for this test, named by the variables the services read."""
    names = {
        "EVENTS_TOPIC": unique_name("e2e-events"),
        "BAD_EVENTS_TOPIC": unique_name("e2e-bad"),
        "DLQ_TOPIC": unique_name("e2e-dlq"),
    }
    await create_topic(kafka_bootstrap, names["EVENTS_TOPIC"], partitions=2)
    await create_topic(kafka_bootstrap, names["BAD_EVENTS_TOPIC"])
    await create_topic(kafka_bootstrap, names["DLQ_TOPIC"])
    return names


@pytest.fixture
def pipeline(
    kafka_bootstrap: str, topics: dict[str, str], collector: RunningCollector, tmp_path: Path
) -> Iterator[str]:
    """The API and the forwarder, wired to the session broker and this test's collector."""
    shared = {"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap, "LOG_LEVEL": "INFO", **topics}
    api_port, forwarder_admin_port = free_port(), free_port()
    api = ServiceProcess(
        "api-service",
        {
            **shared,
            "API_HOST": "127.0.0.1",
            "API_PORT": str(api_port),
            "API_ADMIN_PORT": str(free_port()),
            "API_KEYS": API_KEY,
            "API_DRAIN_GRACE_S": "0",
        },
        ready_url=f"http://127.0.0.1:{api_port}/readyz",
        log_path=tmp_path / "api.log",
    )
    forwarder = ServiceProcess(
        "forwarder-service",
        {
            **shared,
            "COLLECTOR_URL": collector.base_url,
            "FORWARDER_GROUP_ID": unique_name("e2e-group"),
            "FORWARDER_ADMIN_PORT": str(forwarder_admin_port),
            "FORWARDER_ADMIN_HOST": "127.0.0.1",
        },
        ready_url=f"http://127.0.0.1:{forwarder_admin_port}/readyz",
        log_path=tmp_path / "forwarder.log",
    )
    with api, forwarder:
        yield f"http://127.0.0.1:{api_port}"
        assert forwarder.stop() == 0, forwarder.log()
        assert api.stop() == 0, api.log()


async def test_an_event_posted_to_the_api_reaches_the_collector_as_payload_data(
    pipeline: str, collector: RunningCollector
) -> None:
    event_id = str(uuid.uuid4())
    event = {
        "event_id": event_id,
        "event_type": "page_view",
        "app_id": "e2e",
        "page": {"url": "https://example.com/pricing", "title": "Pricing"},
        "subject": {"user_id": "user-42"},
    }
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{pipeline}/v1/events", json=event, headers={"Authorization": f"Bearer {API_KEY}"}
        ) as answer,
    ):
        assert answer.status == 200, await answer.text()

    # The collector validates every body against payload_data 1-0-4: nothing bad, one good.
    await collector.wait_for_count(1, timeout_s=30)
    assert await collector.bad() == []
    [received] = await collector.good(eid=event_id)
    fields = received.get("event", received)
    assert fields["e"] == "pv"
    assert fields["aid"] == "e2e"
    assert fields["url"] == "https://example.com/pricing"
    assert fields["uid"] == "user-42"
