"""The official Snowplow Python tracker posting to the local collector."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from snowplow_tracker.emitters import Emitter
from snowplow_tracker.events.page_view import PageView
from snowplow_tracker.events.self_describing import SelfDescribing
from snowplow_tracker.events.structured_event import StructuredEvent
from snowplow_tracker.self_describing_json import SelfDescribingJson
from snowplow_tracker.tracker import Tracker

from tests.support.collector import RunningCollector

CLICK = "iglu:com.example/click/jsonschema/1-0-0"
USER = "iglu:com.example/user/jsonschema/1-0-0"


def _track_and_flush(base_url: str, failures: list[int]) -> None:
    address = urlsplit(base_url)
    emitter = Emitter(
        address.hostname or "127.0.0.1",
        protocol="http",
        port=address.port,
        method="post",
        batch_size=10,
        on_failure=lambda sent, _unsent: failures.append(sent),
    )
    tracker = Tracker("it", emitter, app_id="tracker-app", encode_base64=True)
    user = SelfDescribingJson(USER, {"id": "u-1"})
    tracker.track(PageView(page_url="https://example.com/a", context=[user]))
    tracker.track(StructuredEvent(category="shop", action="add"))
    tracker.track(SelfDescribing(SelfDescribingJson(CLICK, {"x": 1})))
    tracker.flush()


async def test_snowplow_python_tracker_events_are_accepted(collector: RunningCollector) -> None:
    failures: list[int] = []

    await asyncio.to_thread(_track_and_flush, collector.base_url, failures)

    assert failures == []
    assert await collector.wait_for_count(3) == 3
    assert await collector.bad() == []
    [page_view] = await collector.good(event_type="pv")
    assert page_view["app_id"] == "tracker-app"
    assert page_view["contexts"] == [USER]
    assert page_view["stm"] is not None
    [click] = await collector.good(schema=CLICK)
    assert click["event_type"] == "ue"
    assert len(await collector.good(event_type="se", app_id="tracker-app")) == 1
