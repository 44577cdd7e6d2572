"""The API on the real broker: a 2xx means the events are in Kafka, keyed per the contract."""

from __future__ import annotations

import uuid

import orjson
import pytest
from tracking_common.observability import configure_telemetry
from tracking_common.record import EVENT_RECORD_SCHEMA, decode_record, partition_key

from tests.integration.api_service.api_it import (
    PAYLOAD_DATA,
    TP2,
    LiveApi,
    Topics,
    page_view,
)

pytestmark = pytest.mark.kafka


async def test_a_single_event_is_in_kafka_with_key_headers_and_trace(live_api: LiveApi) -> None:
    configure_telemetry("api-service-tests")  # a real tracer, so spans have a trace context
    event = page_view(app_id="shop", subject={"user_id": "u-1"})

    answer = await live_api.v1(event)

    assert answer.status_code == 200
    [record] = await live_api_topics(live_api).events_records(1)
    decoded = decode_record(record.value)
    assert decoded.event_id == event["event_id"]
    assert decoded.payload["aid"] == "shop"
    assert record.key == b"shop:u-1" == partition_key(decoded.payload)
    headers = dict(record.headers)
    assert headers["record-schema"] == EVENT_RECORD_SCHEMA.encode()
    assert headers["event-id"] == event["event_id"].encode()
    assert headers["traceparent"].startswith(b"00-")


async def test_a_batch_keeps_one_users_events_in_order(live_api: LiveApi) -> None:
    events = [
        page_view(app_id="shop", subject={"user_id": f"u-{i % 3}"}, page={"url": f"https://s/{i}"})
        for i in range(30)
    ]

    answer = await live_api.v1({"events": events})

    assert answer.status_code == 200
    assert answer.json()["accepted"] == 30
    records = await live_api_topics(live_api).events_records(30)
    assert sorted(decode_record(r.value).event_id for r in records) == sorted(
        e["event_id"] for e in events
    )
    for user in ("u-0", "u-1", "u-2"):
        mine = [r for r in records if r.key == f"shop:{user}".encode()]
        assert len({r.partition for r in mine}) == 1
        sent = [e["event_id"] for e in events if e["subject"]["user_id"] == user]
        assert [
            decode_record(r.value).event_id for r in sorted(mine, key=lambda r: r.offset)
        ] == sent


async def test_a_partial_batch_puts_the_rejected_on_the_bad_topic(live_api: LiveApi) -> None:
    good = [page_view(), page_view()]
    bad = {"event_type": "struct", "event_id": str(uuid.uuid4()), "category": "c"}

    answer = await live_api.v1({"events": [good[0], bad, good[1]]})

    assert answer.status_code == 207
    topics = live_api_topics(live_api)
    records = await topics.events_records(2)
    # Keyed by event id (no user), so spread over partitions: no order across them.
    assert sorted(decode_record(r.value).event_id for r in records) == sorted(
        e["event_id"] for e in good
    )
    [rejected] = await topics.bad_records(1)
    data = orjson.loads(rejected.value)["data"]
    assert data["index"] == 1
    assert orjson.loads(data["raw"]) == bad
    assert data["errors"] == [{"path": "/action", "code": "missing", "message": "Field required"}]


async def test_tracker_protocol_post_and_pixel_land_in_kafka(live_api: LiveApi) -> None:
    eid_post, eid_pixel = str(uuid.uuid4()), str(uuid.uuid4())
    item = {"e": "pv", "p": "web", "tv": "js-3", "url": "https://s/", "eid": eid_post}
    item["stm"] = "1700000000500"

    post = await live_api.client.post(TP2, json={"schema": PAYLOAD_DATA, "data": [item]})
    pixel = await live_api.client.get(
        "/i",
        params={"e": "se", "p": "web", "tv": "px", "se_ca": "c", "se_ac": "a", "eid": eid_pixel},
    )

    assert (post.status_code, pixel.status_code) == (200, 200)
    records = {
        r.event_id: r
        for r in map(
            decode_record, [x.value for x in await live_api_topics(live_api).events_records(2)]
        )
    }
    assert records[eid_post].source == "tp2"
    assert records[eid_post].device_sent_tstamp == 1_700_000_000_500
    assert "stm" not in records[eid_post].payload
    assert records[eid_pixel].source == "pixel"
    assert records[eid_pixel].payload["se_ca"] == "c"


async def test_malformed_json_is_kept_on_the_bad_topic(live_api: LiveApi) -> None:
    answer = await live_api.client.post(
        "/v1/events", content=b"{nope", headers={"x-api-key": live_api.settings.keys[0]}
    )

    assert answer.status_code == 400
    [record] = await live_api_topics(live_api).bad_records(1)
    assert orjson.loads(record.value)["data"]["raw"] == "{nope"


def live_api_topics(api: LiveApi) -> Topics:
    """The topics ``api`` publishes to."""
    topics = Topics(api.settings.kafka_bootstrap_servers)
    topics.events = api.settings.events_topic
    topics.bad = api.settings.bad_events_topic
    return topics


async def test_anonymous_events_and_rejections_leave_no_partition_hash_behind(
    live_api: LiveApi,
) -> None:
    # Their keys are the event's or the request's own id: kept, each grew the publisher by
    # about 150 bytes for good (the API's RSS rose 0.8 MB a minute in a 100 events/s soak).
    bad = {"event_type": "struct", "category": "c"}
    for n in range(40):
        users = [page_view(app_id="shop", subject={"user_id": f"u-{n % 3}"})]
        anonymous = [page_view() for _ in range(4)]
        answer = await live_api.v1({"events": [*users, *anonymous, {**bad, "event_id": str(n)}]})
        assert answer.status_code == 207

    assert live_api.publisher.cached_partition_keys == 3  # the three users
