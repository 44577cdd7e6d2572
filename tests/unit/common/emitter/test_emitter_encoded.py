"""Intake of encoded payloads per slice: spliced bodies, exact bytes, prefixes that fit."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tracking_common.emitter import (
    AsyncEmitter,
    BufferFullError,
    EmitterClosedError,
    EventTooLargeError,
    FailureReason,
)
from tracking_common.emitter.payload import (
    ENVELOPE_BYTES,
    PAYLOAD_DATA_URI,
    PendingEvent,
    body_size,
    encoded_size,
    post_body,
)
from tracking_common.emitter.testing import FakeHttpClient, FakeSleep
from tracking_common.iglu import PAYLOAD_DATA_SCHEMA, bundled_repository
from tracking_common.record import PAYLOAD_KEYS, check_record, encode_record

from tests.support.fuzzing import examples

URL = "http://collector.test"


def encoded(n: int, *, pad: int = 0, **extra: str) -> bytes:
    event = {"e": "pv", "eid": str(uuid.UUID(int=n)), "tv": "t", "p": "web", "url": "u" * pad}
    return orjson.dumps({**event, **extra})


def emitter(client: FakeHttpClient, **options: Any) -> AsyncEmitter:
    options.setdefault("flush_interval_s", None)
    return AsyncEmitter(URL, client=client, sleep=FakeSleep(), **options)


async def test_a_slice_is_taken_in_one_call_and_spliced_into_valid_bodies() -> None:
    client = FakeHttpClient()
    delivered: list[PendingEvent] = []
    sink = emitter(client, batch_size=4, on_success=delivered.extend)
    payloads = [encoded(n) for n in range(10)]

    assert sink.add_encoded(payloads, [f"tag-{n}" for n in range(10)]) == 10
    await sink.flush()

    assert [len(request.events) for request in client.requests] == [4, 4, 2]
    by_eid = {orjson.loads(p)["eid"]: p for p in payloads}
    for request in client.requests:
        document = request.json()
        assert document["schema"] == PAYLOAD_DATA_SCHEMA.uri
        bundled_repository().validate(PAYLOAD_DATA_SCHEMA, document["data"])
        # The body's length is exactly what the byte accounting says.
        carried = [by_eid[event["eid"]] for event in request.events]
        assert len(request.body) == ENVELOPE_BYTES + sum(encoded_size(p) for p in carried)
    sent = [event for request in client.requests for event in request.events]
    assert [{k: v for k, v in e.items() if k != "stm"} for e in sent] == [
        orjson.loads(p) for p in payloads
    ]
    assert all(len(event["stm"]) == 13 for event in sent)
    assert sorted(event.tag for event in delivered) == sorted(f"tag-{n}" for n in range(10))
    await sink.close()


async def test_only_the_prefix_that_fits_is_taken() -> None:
    client = FakeHttpClient()
    sink = emitter(client, buffer_capacity=5)
    assert sink.add_encoded([encoded(n) for n in range(8)], list(range(8))) == 5
    assert sink.pending[0] == 5
    assert sink.add_encoded([encoded(9)], [9]) == 0
    await sink.flush()
    assert sink.add_encoded([encoded(n) for n in range(8)], list(range(8))) == 5
    await sink.close()


async def test_the_byte_capacity_cuts_the_prefix_exactly() -> None:
    payloads = [encoded(n) for n in range(6)]
    three = sum(encoded_size(p) for p in payloads[:3])
    sink = emitter(FakeHttpClient(), capacity_bytes=three + 1)
    assert sink.add_encoded(payloads, list(range(6))) == 3
    assert sink.pending == (3, three)
    await sink.close()


async def test_an_event_too_large_alone_fails_as_oversize_and_the_rest_go() -> None:
    client = FakeHttpClient()
    failed: list[tuple[list[Any], FailureReason]] = []
    sink = emitter(
        client,
        byte_limit=2_000,
        on_oversize="fail",
        on_failure=lambda _sent, events, failure: failed.append(
            ([event.tag for event in events], failure.reason)
        ),
    )
    payloads = [encoded(0), encoded(1, pad=3_000), encoded(2)]
    assert sink.add_encoded(payloads, ["a", "big", "c"]) == 3
    await sink.flush()
    assert failed == [(["big"], FailureReason.OVERSIZE)]
    assert [event["eid"] for request in client.requests for event in request.events] == [
        str(uuid.UUID(int=0)),
        str(uuid.UUID(int=2)),
    ]
    await sink.close()


async def test_a_closed_emitter_refuses_a_slice() -> None:
    sink = emitter(FakeHttpClient())
    await sink.close()
    with pytest.raises(EmitterClosedError):
        sink.add_encoded([encoded(0)], [None])


_VALUES = st.text(max_size=12)
_PAYLOADS = st.dictionaries(st.sampled_from(sorted(PAYLOAD_KEYS)), _VALUES, max_size=6)


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(_PAYLOADS, min_size=1, max_size=8), st.sampled_from([b"", b" ", b"\n  "]))
async def test_record_payloads_splice_into_bodies_the_schema_accepts(
    extras: list[dict[str, str]], space: bytes
) -> None:
    # Payloads as the forwarder hands them over: the payload object's bytes exactly as the
    # record holds them (any order, escapes, white space inside the braces).
    raws = []
    for n, extra in enumerate(extras):
        eid = str(uuid.UUID(int=n + 1))
        payload = {**extra, "e": "pv", "p": "web", "tv": "t", "eid": eid}
        value = encode_record(payload, source="v1")
        document = orjson.loads(value)
        text = orjson.dumps(document["data"]["payload"])
        spaced = b"{" + space + text[1:-1] + space + b"}"
        value = value.replace(text, spaced)
        raws.append(memoryview(check_record(value).payload))
    client = FakeHttpClient()
    sink = emitter(client, batch_size=3)
    assert sink.add_encoded(raws, [None] * len(raws)) == len(raws)
    await sink.flush()
    for request in client.requests:
        data = request.json()["data"]
        bundled_repository().validate(PAYLOAD_DATA_SCHEMA, data)
        assert all(isinstance(event["stm"], str) for event in data)
    sent = [event for request in client.requests for event in request.events]
    assert [event["eid"] for event in sent] == [str(uuid.UUID(int=n + 1)) for n in range(len(raws))]
    assert sum(len(request.body) for request in client.requests) == len(
        client.requests
    ) * ENVELOPE_BYTES + sum(encoded_size(raw) for raw in raws)
    await sink.close()


def test_raw_payloads_are_buffers_of_the_record() -> None:
    value = encode_record(orjson.loads(encoded(1)), source="v1")
    raw = check_record(value).payload
    assert isinstance(raw, msgspec.Raw)
    assert bytes(memoryview(raw)) in value


async def test_add_json_sends_what_add_sends_and_refuses_as_add_does() -> None:
    payloads = [orjson.loads(encoded(n)) for n in range(5)]
    by_add, by_json = FakeHttpClient(), FakeHttpClient()
    first, second = emitter(by_add, batch_size=2), emitter(by_json, batch_size=2)
    for payload in payloads:
        first.add(payload)
        second.add_json(orjson.dumps(payload))
    await first.flush()
    await second.flush()
    strip = [
        [{k: v for k, v in e.items() if k != "stm"} for e in r.events] for r in by_json.requests
    ]
    assert strip == [payloads[0:2], payloads[2:4], payloads[4:]]
    assert [len(r.body) for r in by_json.requests] == [len(r.body) for r in by_add.requests]
    assert second.pending == (0, 0)
    await first.close()
    await second.close()

    full = emitter(FakeHttpClient(), batch_size=2, buffer_capacity=2)
    full.add_json(encoded(1))
    full.add_json(encoded(2))
    with pytest.raises(BufferFullError):
        full.add_json(encoded(3))
    small = emitter(FakeHttpClient(), byte_limit=200)
    with pytest.raises(EventTooLargeError):
        small.add_json(encoded(4, pad=300))
    bytes_full = emitter(FakeHttpClient(), capacity_bytes=150)
    bytes_full.add_json(encoded(5))
    with pytest.raises(BufferFullError):
        bytes_full.add_json(encoded(6))
    for sink in (full, small, bytes_full):
        await sink.close()
    with pytest.raises(EmitterClosedError):
        full.add_json(encoded(7))


async def test_add_json_in_get_mode_sends_the_payload_as_a_query() -> None:
    client = FakeHttpClient()
    sink = emitter(client, method="get")
    sink.add_json(encoded(1))
    await sink.flush()
    (request,) = client.requests
    assert request.method == "GET"
    assert f"eid={uuid.UUID(int=1)}" in request.query
    await sink.close()


@pytest.mark.parametrize("count", [1, 2, 5])
def test_a_body_is_the_envelope_with_stm_spliced_into_each_event(count: int) -> None:
    payloads = [encoded(n) for n in range(count)]
    events = [PendingEvent(payload[1:], encoded_size(payload)) for payload in payloads]

    body = post_body(events, 1_700_000_000_123)

    assert orjson.loads(body) == {
        "schema": PAYLOAD_DATA_URI,
        "data": [{"stm": "1700000000123", **orjson.loads(payload)} for payload in payloads],
    }
    assert len(body) == body_size(events)
