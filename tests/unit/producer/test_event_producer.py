"""EventProducer on a fake of the Publisher port: validation as the API's, all-or-nothing calls,
records of source internal, and each error path (invalid, timeout, Kafka refusal, closed)."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from tracking_common import errors as tracking_errors
from tracking_common.events import PageView
from tracking_common.record import decode_record
from tracking_producer import (
    EventProducer,
    InvalidEventError,
    KafkaRefusedError,
    NotProducedError,
    ProducerClosedError,
    ProduceTimeoutError,
)

from tests.unit.api_service.api_support import FakePublisher

TOPIC = "events-unit"


def page_view(n: int = 1, **extra: Any) -> dict[str, Any]:
    """A valid /v1 page view."""
    return {
        "event_type": "page_view",
        "app_id": "unit",
        "page": {"url": f"https://a.example/{n}"},
        **extra,
    }


@pytest.fixture
def publisher() -> FakePublisher:
    """The in-memory publisher."""
    return FakePublisher()


@pytest.fixture
async def producer(publisher: FakePublisher) -> AsyncIterator[EventProducer]:
    """A started producer on the fake publisher, with a short deadline."""
    async with EventProducer(topic=TOPIC, produce_timeout_s=0.3, publisher=publisher) as started:
        yield started


async def test_send_returns_the_id_of_a_record_of_source_internal(
    producer: EventProducer, publisher: FakePublisher
) -> None:
    event_id = str(uuid.uuid4())

    assert await producer.send(page_view(event_id=event_id, subject={"user_id": "u-1"})) == event_id

    [message] = publisher.messages
    record = decode_record(message.value)
    assert message.topic == TOPIC
    assert record.source == "internal"
    assert record.event_id == event_id
    assert message.key == b"unit:u-1"
    assert dict(message.headers)["event-id"] == event_id.encode()


async def test_send_many_returns_the_ids_in_order_and_a_model_instance_is_an_event(
    producer: EventProducer, publisher: FakePublisher
) -> None:
    model = PageView.model_validate(page_view(9))
    ids = await producer.send_many([page_view(1), model, page_view(2)])

    assert len(ids) == 3
    assert ids[1] == str(model.event_id)
    assert [orjson.loads(m.value)["data"]["event_id"] for m in publisher.messages] == ids


async def test_more_events_than_a_batch_are_checked_in_batches_and_produced_at_once(
    publisher: FakePublisher,
) -> None:
    async with EventProducer(topic=TOPIC, batch_size=3, publisher=publisher) as producer:
        ids = await producer.send_many([page_view(n) for n in range(7)])

    assert len(ids) == len(set(ids)) == 7
    assert publisher.calls == 1
    assert len(publisher.messages) == 7


async def test_one_invalid_event_refuses_the_whole_call_naming_index_path_and_code(
    producer: EventProducer, publisher: FakePublisher
) -> None:
    events: list[Any] = [page_view(1), {"event_type": "page_view"}, "text", page_view(3)]

    with pytest.raises(InvalidEventError) as raised:
        await producer.send_many(events)

    assert publisher.messages == []
    assert [(r.index, [(i.path, i.code) for i in r.issues]) for r in raised.value.rejections] == [
        (1, [("/page", "missing")]),
        (2, [("", "invalid_type")]),
    ]
    assert "event 1: /page missing" in str(raised.value)
    assert isinstance(raised.value, tracking_errors.InvalidEventError)  # the domain's type too
    assert not raised.value.retryable


async def test_the_api_s_rules_apply_unknown_schemas_duplicate_ids_and_size(
    producer: EventProducer,
) -> None:
    same = str(uuid.uuid4())
    unknown = {"schema": "iglu:com.acme/nothing/jsonschema/1-0-0", "data": {}}
    events = [
        page_view(1, event_id=same),
        page_view(2, event_id=same),
        page_view(3, entities=[unknown]),
        page_view(4, page={"url": "https://a.example/" + "x" * 70_000}),
    ]

    with pytest.raises(InvalidEventError) as raised:
        await producer.send_many(events)

    codes = {r.index: {i.code for i in r.issues} for r in raised.value.rejections}
    assert codes[1] == {"duplicate_event_id"}
    assert codes[2] == {"unknown_schema"}
    assert "event_too_large" in codes[3]


async def test_a_value_json_cannot_carry_is_an_invalid_event(producer: EventProducer) -> None:
    with pytest.raises(InvalidEventError) as raised:
        await producer.send(page_view(1, app_id=object()))
    assert raised.value.rejections[0].issues[0].code == "invalid_json"


async def test_chunks_keep_each_event_s_index_whether_written_at_once_or_one_by_one(
    publisher: FakePublisher,
) -> None:
    # Plain dicts are written a chunk at a time; one value JSON cannot carry sends the call
    # down the event-by-event path. Either way every rejection names its event's index.
    plain = [page_view(n) for n in range(7)]
    plain[4] = {"event_type": "page_view"}
    unwritable = [*plain[:4], page_view(9, app_id=object()), *plain[5:]]
    async with EventProducer(topic=TOPIC, batch_size=3, publisher=publisher) as producer:
        first = await producer.send_valid(plain)
        second = await producer.send_valid(unwritable)

    assert [(r.index, r.issues[0].code) for r in first.rejections] == [(4, "missing")]
    assert [(r.index, r.issues[0].code) for r in second.rejections] == [(4, "invalid_json")]
    for checked in (first, second):
        assert [i for i, event_id in enumerate(checked.event_ids) if event_id is None] == [4]
        assert len(checked.messages) == 6


async def test_tracker_protocol_payloads_are_checked_as_tp2(
    producer: EventProducer, publisher: FakePublisher
) -> None:
    good = {"e": "pv", "p": "srv", "tv": "py-1", "url": "https://a.example/", "aid": "unit"}

    [event_id] = await producer.send_payloads([good])
    with pytest.raises(InvalidEventError) as raised:
        await producer.send_payloads([good, {"e": "pv", "p": "srv"}])

    assert decode_record(publisher.messages[0].value).event_id == event_id
    assert raised.value.rejections[0].index == 1
    assert len(publisher.messages) == 1


async def test_kafka_unavailable_times_out_within_the_deadline_keeping_the_ids(
    producer: EventProducer, publisher: FakePublisher
) -> None:
    publisher.connected = False
    event = page_view(1)  # no event_id: one is given, and kept for the retry
    started = time.monotonic()

    with pytest.raises(ProduceTimeoutError) as raised:
        await producer.send_many([event])

    assert time.monotonic() - started < 1.0  # the 0.3 s deadline, not more
    assert raised.value.retryable
    [retry] = raised.value.events
    assert retry["event_id"] == raised.value.event_ids[0]
    publisher.connected = True
    assert await producer.send_many(raised.value.events) == raised.value.event_ids


@pytest.mark.parametrize(
    ("kind", "error"), [("timeout", ProduceTimeoutError), ("error", NotProducedError)]
)
async def test_a_publish_failure_is_translated(
    producer: EventProducer, publisher: FakePublisher, kind: str, error: type[Exception]
) -> None:
    publisher.fail_with = kind
    with pytest.raises(error) as raised:
        await producer.send(page_view(1))
    assert type(raised.value) is error
    assert raised.value.__cause__ is not None


async def test_start_and_stop_are_idempotent_and_a_stopped_producer_refuses_work(
    publisher: FakePublisher,
) -> None:
    producer = EventProducer(topic=TOPIC, publisher=publisher)
    with pytest.raises(ProducerClosedError):
        await producer.send(page_view(1))  # not started
    await producer.start()
    await producer.start()
    await producer.stop()
    await producer.stop()
    with pytest.raises(ProducerClosedError):
        await producer.send(page_view(1))
    with pytest.raises(ProducerClosedError):
        await producer.start()


async def test_check_needs_no_kafka(publisher: FakePublisher) -> None:
    producer = EventProducer(topic=TOPIC, publisher=publisher)  # never started
    checked = await producer.check([page_view(1), {"event_type": "page_view"}])
    await producer.stop()

    assert checked.event_ids[0] is not None
    assert checked.event_ids[1] is None
    assert [r.index for r in checked.rejections] == [1]
    assert len(checked.messages) == 1
    assert publisher.calls == 0


async def test_a_broker_refusing_the_client_is_a_permanent_error_at_once(
    producer: EventProducer, publisher: FakePublisher
) -> None:
    publisher.connected = False
    publisher.refusal = ValueError("KAFKA_SASL_PASSWORD: authentication failed")  # type: ignore[attr-defined]

    with pytest.raises(KafkaRefusedError) as raised:
        await producer.send(page_view(1))

    assert not raised.value.retryable
    assert "KAFKA_SASL_PASSWORD" in str(raised.value)
