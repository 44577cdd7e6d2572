"""The ``api-service`` process: Snowplow's tracker against it, /metrics, and the SIGTERM drain."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from snowplow_tracker.events.page_view import PageView
from snowplow_tracker.events.self_describing import SelfDescribing
from snowplow_tracker.events.structured_event import StructuredEvent
from snowplow_tracker.self_describing_json import SelfDescribingJson
from snowplow_tracker.tracker import Tracker
from tracking_common.record import decode_record

from tests.integration.api_service.api_it import (
    AUTH,
    BUTTON_CLICK,
    KEY,
    USER_ENTITY,
    Topics,
    api_process,
    page_view,
    wait_until,
    write_iglu_dir,
)
from tests.support.snowplow import snowplow_emitter

pytestmark = pytest.mark.kafka


def _track(base_url: str, method: Literal["get", "post"], failures: list[int]) -> None:
    emitter = snowplow_emitter(base_url, method, failures, batch_size=10)
    tracker = Tracker("it", emitter, app_id="tracker-app", encode_base64=True)
    user = SelfDescribingJson(USER_ENTITY, {"id": "u-1"})
    tracker.track(PageView(page_url="https://shop.example/a", context=[user]))
    if method == "post":
        tracker.track(StructuredEvent(category="shop", action="add"))
        tracker.track(SelfDescribing(SelfDescribingJson(BUTTON_CLICK, {"button_id": "buy"})))
    tracker.flush()


async def test_snowplow_tracker_posts_and_gets_and_metrics_count_them(
    topics: Topics, tmp_path: Path
) -> None:
    iglu = write_iglu_dir(tmp_path / "iglu")
    process, url, admin = api_process(topics, tmp_path, IGLU_SCHEMA_DIR=str(iglu))
    failures: list[int] = []
    with process:
        await asyncio.to_thread(_track, url, "post", failures)
        await asyncio.to_thread(_track, url, "get", failures)
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"{admin}/metrics")).text
            public_metrics = await client.get(f"{url}/metrics")

    assert failures == []
    records = [decode_record(r.value) for r in await topics.events_records(4)]
    assert sorted(r.payload["e"] for r in records) == ["pv", "pv", "se", "ue"]
    assert sorted(r.source for r in records) == ["pixel", "tp2", "tp2", "tp2"]
    assert {r.payload["aid"] for r in records} == {"tracker-app"}
    assert all(r.device_sent_tstamp for r in records if r.source == "tp2")
    assert public_metrics.status_code == 404  # metrics only on the admin port
    assert 'tracking_api_requests_total{route="/com.snowplowanalytics.snowplow/tp2"' in metrics
    assert 'tracking_api_events_total{outcome="accepted",source="tp2"} 3.0' in metrics
    assert "tracking_api_produce_duration_seconds_bucket" in metrics
    assert "tracking_api_ready 1.0" in metrics


async def test_sigterm_fails_readiness_keeps_serving_then_exits_cleanly(
    topics: Topics, tmp_path: Path
) -> None:
    process, url, admin = api_process(topics, tmp_path, API_DRAIN_GRACE_S="3")
    event = page_view()
    with process:
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{admin}/readyz")).status_code == 200
            assert process.process is not None
            process.process.terminate()
            async with asyncio.timeout(10):
                while (await client.get(f"{admin}/readyz")).status_code == 200:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            during_grace = await client.post(f"{url}/v1/events", json=event, headers=AUTH)
            assert (await client.get(f"{url}/healthz")).status_code == 200
        await wait_until(lambda: process.process.poll() is not None, 20, "no exit after drain")

    assert during_grace.status_code == 200
    assert process.process.returncode == 0, process.log()
    [record] = await topics.events_records(1)
    assert decode_record(record.value).event_id == event["event_id"]
    assert "draining" in process.log()


async def _refuses_connections(url: str) -> bool:
    address = urlsplit(url)
    try:
        _reader, writer = await asyncio.open_connection(address.hostname, address.port)
    except OSError:
        return True
    writer.close()
    await writer.wait_closed()
    return False


async def test_a_request_in_flight_when_serving_stops_is_finished_and_stored(
    topics: Topics, tmp_path: Path
) -> None:
    process, url, _admin = api_process(topics, tmp_path, API_DRAIN_GRACE_S="0.2")
    event = page_view()
    body = orjson.dumps(event)
    head, tail = body[:10], body[10:]

    async def slow_body() -> AsyncIterator[bytes]:
        yield head
        # The request has started: stop the server, and send the rest only once it no longer
        # accepts connections, so the request is in flight across the stop.
        assert process.process is not None
        process.process.terminate()
        async with asyncio.timeout(15):
            while not await _refuses_connections(url):  # noqa: ASYNC110 - polls another process
                await asyncio.sleep(0.05)
        yield tail

    with process:
        popen = process.process
        assert popen is not None
        async with httpx.AsyncClient(timeout=30) as client:
            answer = await client.post(f"{url}/v1/events", content=slow_body(), headers=AUTH)
        await wait_until(lambda: popen.poll() is not None, 20, "no exit after drain")

    assert answer.status_code == 200, answer.text
    assert answer.json()["event_ids"] == [event["event_id"]]
    assert popen.returncode == 0, process.log()
    [record] = await topics.events_records(1)
    assert decode_record(record.value).event_id == event["event_id"]


async def test_a_client_trickling_its_body_gets_408_and_the_connection_closed(
    topics: Topics, tmp_path: Path
) -> None:
    process, url, _admin = api_process(topics, tmp_path, API_BODY_TIMEOUT_S="1")
    address = urlsplit(url)
    with process:
        reader, writer = await asyncio.open_connection(address.hostname, address.port)
        writer.write(
            b"POST /v1/events HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {KEY}\r\nContent-Length: 200\r\n\r\n".encode()
            + b'{"event_type": "page_view",'
        )
        await writer.drain()
        try:
            async with asyncio.timeout(15):
                answer = await reader.read()  # the server answers, then closes
        finally:
            writer.close()
        # The server is still serving others.
        async with httpx.AsyncClient(timeout=10) as client:
            ok = await client.post(f"{url}/v1/events", json=page_view(), headers=AUTH)

    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b'"code":"body_timeout"' in answer
    assert ok.status_code == 200
