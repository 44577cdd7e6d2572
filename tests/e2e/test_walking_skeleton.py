"""The whole path on real parts: API -> Kafka -> forwarder -> collector, each its own process."""

from __future__ import annotations

import asyncio
import uuid
from typing import Literal

import aiohttp
import pytest
from snowplow_tracker.events.page_view import PageView
from snowplow_tracker.events.structured_event import StructuredEvent
from snowplow_tracker.tracker import Tracker

from tests.e2e.conftest import API_KEY
from tests.support.collector import RunningCollector
from tests.support.pipeline import RunningPipeline
from tests.support.snowplow import snowplow_emitter

pytestmark = [pytest.mark.kafka, pytest.mark.slow]


async def test_an_event_posted_to_the_api_reaches_the_collector_as_payload_data(
    pipeline: RunningPipeline, collector: RunningCollector
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
            f"{pipeline.url}/v1/events", json=event, headers={"Authorization": f"Bearer {API_KEY}"}
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


def _track_with_snowplow(api_url: str, method: Literal["get", "post"]) -> list[int]:
    """Snowplow's own Python tracker, unchanged, pointed at the API; the failures it saw."""
    failures: list[int] = []
    emitter = snowplow_emitter(api_url, method, failures, batch_size=2)
    tracker = Tracker(f"e2e-{method}", emitter, app_id="snowplow-e2e", encode_base64=True)
    tracker.track(PageView(page_url=f"https://shop.example/{method}", page_title="Shop"))
    tracker.track(StructuredEvent(category="shop", action=f"add-{method}"))
    tracker.flush()
    return failures


async def test_snowplow_trackers_reach_the_collector_through_the_pipeline_unchanged(
    pipeline: RunningPipeline, collector: RunningCollector
) -> None:
    failures = await asyncio.to_thread(_track_with_snowplow, pipeline.url, "post")
    failures += await asyncio.to_thread(_track_with_snowplow, pipeline.url, "get")

    assert failures == []
    await collector.wait_for_count(4, timeout_s=30)
    assert await collector.bad() == []
    received = [item.get("event", item) for item in await collector.good()]
    assert sorted((fields["tna"], fields["e"]) for fields in received) == [
        ("e2e-get", "pv"),
        ("e2e-get", "se"),
        ("e2e-post", "pv"),
        ("e2e-post", "se"),
    ]
    for fields in received:
        assert fields["aid"] == "snowplow-e2e"
        assert fields["tv"].startswith("py-")  # the tracker's own fields, kept
        assert fields["stm"].isdigit()  # set again by the forwarder when it sent the event
    assert {fields["se_ac"] for fields in received if fields["e"] == "se"} == {
        "add-post",
        "add-get",
    }
