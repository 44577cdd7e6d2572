"""Batching: count, exact bytes, timer, oversize refusal, capacity, and valid bodies."""

from __future__ import annotations

import asyncio
import uuid
from urllib.parse import parse_qs

import pytest
from tracking_common.emitter import (
    AsyncEmitter,
    BufferFullError,
    EmitterClosedError,
    EventTooLargeError,
    FailureReason,
    HttpResponse,
    RetryPolicy,
)
from tracking_common.emitter.payload import STM_BYTES, body_size, encode_event
from tracking_common.emitter.testing import FakeHttpClient, FakeSleep, SentRequest
from tracking_common.iglu import PAYLOAD_DATA_SCHEMA, bundled_repository

URL = "http://collector.test"


def payload(n: int = 0, *, pad: int = 0) -> dict[str, str]:
    return {
        "e": "pv",
        "eid": str(uuid.UUID(int=n)),
        "tv": "test-1",
        "p": "srv",
        "url": "https://example.com/" + "x" * pad,
        "dtm": "1700000000000",
    }


def assert_valid(request: SentRequest) -> None:
    """Every POST body matches payload_data 1-0-4 and carries a fresh 13-digit stm."""
    document = request.json()
    assert document["schema"] == PAYLOAD_DATA_SCHEMA.uri
    bundled_repository().validate(PAYLOAD_DATA_SCHEMA, document["data"])
    for event in document["data"]:
        assert len(event["stm"]) == 13


def emitter(client: FakeHttpClient, **options: object) -> AsyncEmitter:
    options.setdefault("flush_interval_s", None)
    options.setdefault("sleep", FakeSleep())
    return AsyncEmitter(URL, client=client, **options)  # type: ignore[arg-type]


async def test_cuts_at_batch_size_and_sends_valid_bodies() -> None:
    client = FakeHttpClient()
    sent: list[int] = []
    sink = emitter(client, batch_size=10, on_success=lambda events: sent.append(len(events)))
    for n in range(25):
        sink.add(payload(n))
    await sink.flush()
    assert [len(r.events) for r in client.requests] == [10, 10, 5]
    assert sorted(sent) == [5, 10, 10]
    for request in client.requests:
        assert request.url == URL + "/com.snowplowanalytics.snowplow/tp2"
        assert request.headers["Content-Type"].startswith("application/json")
        assert_valid(request)
    eids = [event["eid"] for r in client.requests for event in r.events]
    assert eids == [str(uuid.UUID(int=n)) for n in range(25)]
    await sink.close()
    assert sink.pending == (0, 0)


async def test_byte_limit_is_never_passed_and_sizes_are_exact() -> None:
    client = FakeHttpClient()
    limit = 2_000
    sink = emitter(client, batch_size=100, byte_limit=limit)
    for n in range(40):
        sink.add(payload(n, pad=n * 7))
    await sink.flush()
    assert sum(len(r.events) for r in client.requests) == 40
    for request in client.requests:
        assert len(request.body) <= limit
        sizes = [encode_event(event)[1] for event in request.events]
        assert len(request.body) == body_size_of(sizes)
        assert_valid(request)
    # Each request was cut only because the next event would not fit.
    for first, second in zip(client.requests, client.requests[1:], strict=False):
        next_size = encode_event(second.events[0])[1]
        assert len(first.body) + next_size > limit
    await sink.close()


def body_size_of(sizes: list[int]) -> int:
    class Sized:
        def __init__(self, size: int) -> None:
            self.size = size

    return body_size([Sized(size) for size in sizes])  # type: ignore[misc]


async def test_single_event_over_the_limit_is_refused_at_add() -> None:
    client = FakeHttpClient()
    sink = emitter(client, byte_limit=1_000)
    with pytest.raises(EventTooLargeError) as caught:
        sink.add(payload(pad=2_000))
    assert caught.value.limit == 1_000
    assert caught.value.size > 1_000
    assert sink.pending == (0, 0)
    await sink.close()
    assert client.requests == []


async def test_oversize_can_be_reported_as_a_failure_instead() -> None:
    client = FakeHttpClient()
    failures: list[FailureReason] = []
    sink = emitter(
        client,
        byte_limit=1_000,
        on_oversize="fail",
        on_failure=lambda sent, events, failure: failures.append(failure.reason),
    )
    result = sink.add_awaitable(payload(pad=2_000))
    outcome = await result
    assert not outcome.delivered
    assert outcome.failure is not None
    assert outcome.failure.reason is FailureReason.OVERSIZE
    assert "1000-byte limit" in outcome.failure.message
    assert failures == [FailureReason.OVERSIZE]
    assert client.requests == []
    await sink.close()


async def test_flush_interval_cuts_a_partial_batch() -> None:
    client = FakeHttpClient()
    sink = AsyncEmitter(URL, client=client, batch_size=100, flush_interval_s=0.01)
    result = sink.add_awaitable(payload())
    assert (await asyncio.wait_for(result, 5)).delivered
    assert [len(r.events) for r in client.requests] == [1]
    await sink.close()


async def test_full_buffer_raises_and_never_drops() -> None:
    gate = asyncio.Event()
    client = FakeHttpClient.held(gate)
    sink = emitter(client, batch_size=5, buffer_capacity=12, max_in_flight=1)
    for n in range(12):
        sink.add(payload(n))
    with pytest.raises(BufferFullError) as caught:
        sink.add(payload(99))
    assert caught.value.pending_events == 12
    gate.set()
    await sink.flush()
    assert sum(len(r.events) for r in client.requests) == 12
    sink.add(payload(99))  # room again
    await sink.close()


async def test_capacity_in_bytes() -> None:
    client = FakeHttpClient()
    size = encode_event(payload())[1]
    sink = emitter(client, batch_size=50, capacity_bytes=size * 3)
    for n in range(3):
        sink.add(payload(n))
    with pytest.raises(BufferFullError):
        sink.add(payload(3))
    await sink.close()


async def test_stm_in_a_payload_is_replaced_not_duplicated() -> None:
    client = FakeHttpClient()
    sink = emitter(client, clock=lambda: 1_800_000_000.0)
    sink.add({**payload(), "stm": "1"})
    await sink.flush()
    assert client.requests[0].events[0]["stm"] == "1800000000000"
    assert client.requests[0].body.count(b'"stm"') == 1
    await sink.close()


async def test_after_an_outage_the_backlog_goes_in_batches_not_one_request() -> None:
    client = FakeHttpClient.scripted(503, 503, 503)
    sink = emitter(client, batch_size=10, max_in_flight=1, buffer_capacity=1_000)
    for n in range(200):
        sink.add(payload(n))
    await sink.flush()
    assert max(len(r.events) for r in client.requests) == 10
    assert sum(len(r.events) for r in client.requests) == 200 + 30
    await sink.close()


async def test_closed_emitter_refuses_events() -> None:
    sink = emitter(FakeHttpClient())
    await sink.close()
    await sink.close()  # idempotent
    with pytest.raises(EmitterClosedError):
        sink.add(payload())


async def test_close_abandons_what_it_cannot_deliver_in_time() -> None:
    async def unavailable(_: SentRequest) -> HttpResponse:
        return HttpResponse(503)

    client = FakeHttpClient(unavailable)
    sleep = FakeSleep()
    failed: list[FailureReason] = []
    sink = AsyncEmitter(
        URL,
        client=client,
        flush_interval_s=None,
        sleep=sleep,
        retry=RetryPolicy.forever(),
        on_failure=lambda sent, events, failure: failed.extend([failure.reason] * len(events)),
    )
    for n in range(7):
        sink.add(payload(n))
    await sink.close(timeout_s=0.05)
    assert failed == [FailureReason.ABANDONED] * 7
    assert sink.pending == (0, 0)
    assert client.closed is False  # an injected client belongs to the caller


async def test_get_mode_sends_one_event_per_request() -> None:
    client = FakeHttpClient()
    sink = emitter(client, method="get", batch_size=50)
    for n in range(3):
        sink.add(payload(n))
    await sink.flush()
    assert [r.method for r in client.requests] == ["GET"] * 3
    assert all(r.url == URL + "/i" for r in client.requests)
    query = parse_qs(client.requests[0].query)
    assert query["e"] == ["pv"]
    assert len(query["stm"][0]) == 13
    await sink.close()


async def test_add_many_resolves_when_all_are_settled() -> None:
    client = FakeHttpClient()
    sink = emitter(client, batch_size=3)
    result = await sink.add_many([payload(n) for n in range(7)], tags=list(range(7)))
    assert result.ok
    assert sorted(event.tag for event in result.delivered) == list(range(7))
    assert result.delivered[0].payload()["e"] == "pv"
    await sink.close()


async def test_discard_drops_waiting_events_by_tag() -> None:
    gate = asyncio.Event()
    client = FakeHttpClient.held(gate)
    sink = emitter(client, batch_size=2, max_in_flight=1)
    for n in range(6):
        sink.add(payload(n), tag=n % 2)
    await asyncio.sleep(0)  # first batch is now in flight
    dropped = sink.discard(lambda tag: tag == 1)
    assert dropped == 2  # events 3 and 5; event 1 is in flight
    gate.set()
    await sink.flush()
    sent = [event["eid"] for r in client.requests for event in r.events]
    assert sent == [str(uuid.UUID(int=n)) for n in (0, 1, 2, 4)]
    assert sink.pending == (0, 0)
    await sink.close()


def test_stm_bytes_constant() -> None:
    assert len(',"stm":"1700000000000"}') == STM_BYTES


async def test_wait_for_room_applies_backpressure() -> None:
    client = FakeHttpClient()
    sink = emitter(client, batch_size=5, buffer_capacity=10)
    for n in range(30):
        await sink.wait_for_room()
        sink.add(payload(n))
    await sink.flush()
    assert sum(len(r.events) for r in client.requests) == 30
    await sink.close()
