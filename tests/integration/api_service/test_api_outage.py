"""Kafka stopped mid-run: 503 with Retry-After, and nothing the API acknowledged is lost."""

from __future__ import annotations

import asyncio

import pytest
from tracking_common.record import decode_record

from tests.integration.api_service.api_it import LiveApi, Topics, page_view
from tests.support.kafka import PrivateBroker

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def test_kafka_outage_is_503_and_every_acknowledged_event_survives(
    private_broker: PrivateBroker,
) -> None:
    topics = await Topics(private_broker.bootstrap).create()
    api = await LiveApi(topics, api_produce_timeout_s=2.0).start()
    acknowledged: list[str] = []

    async def post() -> int:
        batch = [page_view(), page_view()]
        answer = await api.v1({"events": batch})
        if answer.status_code == 200:
            acknowledged.extend(event["event_id"] for event in batch)
        else:
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == str(api.settings.api_retry_after_s)
        return answer.status_code

    try:
        assert [await post() for _ in range(5)] == [200] * 5

        await asyncio.to_thread(private_broker.stop)
        statuses = [await post() for _ in range(3)]
        assert statuses == [503] * 3
        ready = await api.client.get("/readyz")
        assert ready.status_code == 503
        assert (await api.client.get("/healthz")).status_code == 200

        await asyncio.to_thread(private_broker.start)
        async with asyncio.timeout(60):
            while await post() != 200:  # noqa: ASYNC110 - a client retrying after 503
                await asyncio.sleep(0.2)
        assert [await post() for _ in range(3)] == [200] * 3
    finally:
        await api.close()

    landed = await topics.events_records(len(acknowledged), timeout_s=30)
    assert set(acknowledged) <= {decode_record(record.value).event_id for record in landed}
