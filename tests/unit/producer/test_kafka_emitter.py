"""common's Tracker on the library (EventProducer.tracker): payloads checked as /tp2, produced
as records of source internal; invalid ones and Kafka failures reach on_failure, never lost."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from tracking_common.emitter.errors import BufferFullError, EmitterClosedError
from tracking_common.events import Subject
from tracking_common.record import decode_record
from tracking_producer import EventProducer
from tracking_producer.emitter import OnFailure

from tests.unit.api_service.api_support import FakePublisher

Failures = list[tuple[list[str], str]]


def recorder(failures: Failures) -> OnFailure:
    """An on_failure that keeps the payloads' event types and the reason."""

    def on_failure(payloads: Sequence[Mapping[str, str]], reason: str) -> None:
        failures.append(([p.get("e", "?") for p in payloads], reason))

    return on_failure


async def test_tracked_events_become_records_of_source_internal() -> None:
    publisher = FakePublisher()
    async with EventProducer(topic="t", publisher=publisher) as producer:
        tracker = producer.tracker(app_id="ops", subject=Subject(user_id="u-7"), batch_size=2)
        ids = [
            tracker.track_page_view("https://a.example/", title="A"),
            tracker.track_struct_event("job", "done", value=3.0),
            tracker.track_self_describing_event(
                {
                    "schema": "iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1",
                    "data": {"targetUrl": "https://b.example/"},
                }
            ),
        ]
        await tracker.flush()

    records = [decode_record(m.value) for m in publisher.messages]
    assert sorted(r.event_id for r in records) == sorted(ids)
    assert {r.source for r in records} == {"internal"}
    assert {r.payload["uid"] for r in records} == {"u-7"}
    assert {m.key for m in publisher.messages} == {b"ops:u-7"}


async def test_invalid_payloads_and_kafka_failures_reach_on_failure() -> None:
    publisher, failures = FakePublisher(), Failures()
    async with EventProducer(topic="t", publisher=publisher, produce_timeout_s=0.2) as producer:
        tracker = producer.tracker(on_failure=recorder(failures))
        tracker.track_self_describing_event(
            {"schema": "iglu:com.acme/unknown/jsonschema/1-0-0", "data": {}}
        )
        tracker.track_page_view("https://a.example/")
        await tracker.flush()
        publisher.connected = False
        tracker.track_page_view("https://a.example/2")
        await tracker.flush()

    assert len(publisher.messages) == 1  # the valid page view of the first batch
    assert failures[0][0] == ["ue"]
    assert "unknown_schema" in failures[0][1]
    assert failures[1][0] == ["pv"]
    assert "did not acknowledge" in failures[1][1]


async def test_capacity_and_close() -> None:
    async with EventProducer(topic="t", publisher=FakePublisher()) as producer:
        tracker = producer.tracker(capacity=1, batch_size=10)
        tracker.track_page_view("https://a.example/")
        with pytest.raises(BufferFullError):
            tracker.track_page_view("https://a.example/2")
        await tracker.close(timeout_s=5)
        with pytest.raises(EmitterClosedError):
            tracker.track_page_view("https://a.example/3")
