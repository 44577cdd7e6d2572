"""Kafka stopped mid-run under the ``api-service`` process: 503 with Retry-After within the
produce deadline, both probes hold while the metrics show the outage, the API recovers when
Kafka returns, and nothing it acknowledged is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from tracking_common.record import decode_record

from tests.integration.api_service.api_it import AUTH, Topics, api_process, page_view
from tests.support.kafka import PrivateBroker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]

PRODUCE_TIMEOUT_S = 2.0
RETRY_AFTER_S = 1


async def test_kafka_outage_is_503_and_every_acknowledged_event_survives(
    private_broker: PrivateBroker, tmp_path: Path
) -> None:
    topics = await Topics(private_broker.bootstrap).create()
    process, url, admin = api_process(
        topics,
        tmp_path,
        API_PRODUCE_TIMEOUT_S=str(PRODUCE_TIMEOUT_S),
        API_RETRY_AFTER_S=str(RETRY_AFTER_S),
    )
    acknowledged: list[str] = []

    async def post(client: httpx.AsyncClient) -> int:
        batch = [page_view(), page_view()]
        # Every Kafka await has a deadline: the answer comes, whatever the broker does.
        async with asyncio.timeout(PRODUCE_TIMEOUT_S + 5):
            answer = await client.post(f"{url}/v1/events", json={"events": batch}, headers=AUTH)
        if answer.status_code == 200:
            acknowledged.extend(event["event_id"] for event in batch)
        else:
            assert answer.status_code == 503, answer.text
            assert answer.headers["retry-after"] == str(RETRY_AFTER_S)
            assert "accepted" not in answer.json()
        return answer.status_code

    async def status(client: httpx.AsyncClient, address: str) -> int:
        return (await client.get(address)).status_code

    async def kafka_available(client: httpx.AsyncClient, value: int) -> bool:
        metrics = (await client.get(f"{admin}/metrics")).text
        return f"tracking_api_kafka_available {value:.1f}" in metrics.splitlines()

    with process:
        async with httpx.AsyncClient(timeout=30) as client:
            assert [await post(client) for _ in range(5)] == [200] * 5

            await asyncio.to_thread(private_broker.stop)
            assert [await post(client) for _ in range(3)] == [503] * 3
            async with asyncio.timeout(20):  # the publisher's probe notices within seconds
                while not await kafka_available(client, 0):  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            # Readiness holds: the outage is every replica's, and emptying the Service would
            # replace this 503 (Retry-After, CORS) with the ingress's bare 502.
            assert await status(client, f"{admin}/readyz") == 200
            assert await status(client, f"{url}/healthz") == 200
            assert await status(client, f"{admin}/healthz") == 200
            assert await post(client) == 503

            await asyncio.to_thread(private_broker.start)
            async with asyncio.timeout(60):
                while await post(client) != 200:  # noqa: ASYNC110 - a client retrying after 503
                    await asyncio.sleep(0.2)
            assert [await post(client) for _ in range(3)] == [200] * 3
            assert await status(client, f"{admin}/readyz") == 200
            assert await kafka_available(client, 1)
        assert process.stop() == 0, process.log()

    landed = await topics.events_records(len(acknowledged), timeout_s=30)
    assert set(acknowledged) <= {decode_record(record.value).event_id for record in landed}
