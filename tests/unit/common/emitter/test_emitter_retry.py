"""Retry, backoff, the status tables, splitting, bisecting, set-up failures, concurrency."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Sequence

import pytest
from tracking_common.emitter import (
    AsyncEmitter,
    DeliveryFailure,
    FailureReason,
    HttpResponse,
    PendingEvent,
    RequestReport,
    RetryPolicy,
    StatusClass,
    StatusTable,
    TransportError,
    TransportErrorKind,
)
from tracking_common.emitter.retry import parse_retry_after
from tracking_common.emitter.testing import FakeHttpClient, FakeSleep, SentRequest
from tracking_common.iglu import PAYLOAD_DATA_SCHEMA, bundled_repository

URL = "http://collector.test"


def payload(n: int = 0) -> dict[str, str]:
    return {"e": "se", "eid": str(uuid.UUID(int=n)), "tv": "t", "p": "srv", "se_ca": "c"}


class Listener:
    """An EmitterListener plus an on_failure callback that remember everything."""

    def __init__(self) -> None:
        self.delivered_list: list[PendingEvent] = []
        self.failed_list: list[tuple[PendingEvent, DeliveryFailure]] = []
        self.reports: list[RequestReport] = []
        self.setup: list[int | None] = []
        self.on_failure_calls: list[tuple[int, int, FailureReason]] = []

    def on_failure(self, sent: int, events: Sequence[PendingEvent], f: DeliveryFailure) -> None:
        self.on_failure_calls.append((sent, len(events), f.reason))

    def delivered(self, events: Sequence[PendingEvent]) -> None:
        self.delivered_list.extend(events)

    def failed(self, events: Sequence[PendingEvent], failure: DeliveryFailure) -> None:
        self.failed_list.extend((event, failure) for event in events)

    def request_finished(self, report: RequestReport) -> None:
        self.reports.append(report)

    def setup_failure(self, status: int | None, message: str) -> None:
        self.setup.append(status)


def make(
    client: FakeHttpClient, listener: Listener | None = None, **options: object
) -> tuple[AsyncEmitter, FakeSleep, Listener]:
    listener = listener or Listener()
    sleep = FakeSleep()
    options.setdefault("flush_interval_s", None)
    options.setdefault("rand", lambda: 1.0)
    sink = AsyncEmitter(
        URL,
        client=client,
        sleep=sleep,
        listener=listener,
        on_failure=listener.on_failure,
        **options,  # type: ignore[arg-type]
    )
    return sink, sleep, listener


async def test_500_then_200_is_delivered_with_fresh_stm_per_attempt() -> None:
    ticks = itertools.count(1_700_000_000)
    client = FakeHttpClient.scripted(500, 503)
    sink, sleep, listener = make(client, clock=lambda: float(next(ticks)))
    for n in range(3):
        sink.add(payload(n))
    await sink.flush()
    assert len(listener.delivered_list) == 3
    assert len(client.requests) == 3
    stms = [r.events[0]["stm"] for r in client.requests]
    assert len(set(stms)) == 3  # refreshed on every attempt
    assert sleep.delays == [0.5, 1.0]  # base 0.5 s doubling, rand pinned to 1
    assert [r.will_retry for r in listener.reports] == [True, True, False]
    for request in client.requests:
        bundled_repository().validate(PAYLOAD_DATA_SCHEMA, request.json()["data"])
    await sink.close()


def test_backoff_is_full_jitter_and_capped() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=60.0)
    assert [policy.delay(n, lambda: 1.0) for n in (1, 2, 3, 7, 8, 50)] == [
        1.0,
        2.0,
        4.0,
        60.0,
        60.0,
        60.0,
    ]
    assert policy.delay(3, lambda: 0.25) == 1.0
    assert policy.delay(3, lambda: 0.0) == 0.0
    assert RetryPolicy().max_delay_s == 60.0
    assert policy.after(500.0, 1, lambda: 1.0) == 300.0  # Retry-After, capped
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)


def test_parse_retry_after() -> None:
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") == 0.0
    date = "Wed, 21 Oct 2015 07:28:10 GMT"
    assert parse_retry_after(date, now=lambda: 1445412480.0) == 10.0


async def test_retry_after_is_honoured() -> None:
    client = FakeHttpClient.scripted(HttpResponse(429, {"Retry-After": "7"}))
    sink, sleep, listener = make(client)
    sink.add(payload())
    await sink.flush()
    assert sleep.delays == [7.0]
    assert len(listener.delivered_list) == 1
    await sink.close()


async def test_retries_exhausted_reports_the_last_status() -> None:
    client = FakeHttpClient.scripted(500, 502, 503, 504)
    sink, sleep, _listener = make(client, retry=RetryPolicy.up_to(3))
    result = sink.add_awaitable(payload())
    sink.flush_nowait()
    outcome = await result
    assert outcome.failure is not None
    assert outcome.failure.reason is FailureReason.RETRIES_EXHAUSTED
    assert outcome.failure.status == 503
    assert outcome.failure.attempts == 3
    assert outcome.failure.error_class == "CollectorRejected"
    assert len(client.requests) == 3
    assert len(sleep.delays) == 2
    await sink.close()


async def test_no_retry_policy_makes_one_attempt() -> None:
    client = FakeHttpClient.scripted(500)
    sink, _, listener = make(client, retry=RetryPolicy.no_retry())
    sink.add(payload())
    await sink.flush()
    assert len(client.requests) == 1
    assert listener.failed_list[0][1].reason is FailureReason.RETRIES_EXHAUSTED
    await sink.close()


@pytest.mark.parametrize("status", [400, 401, 403, 410, 422])
async def test_never_retried_by_default(status: int) -> None:
    client = FakeHttpClient.scripted(status)
    sink, sleep, listener = make(client, bisect_rejects=False)
    sink.add(payload())
    sink.add(payload(1))
    await sink.flush()
    assert len(client.requests) == 1
    assert sleep.delays == []
    assert [f.reason for _, f in listener.failed_list] == [FailureReason.NON_RETRYABLE_STATUS] * 2
    assert listener.failed_list[0][1].status == status
    await sink.close()


async def test_custom_retry_codes_override_per_status() -> None:
    client = FakeHttpClient.scripted(400, 500)
    sink, _, listener = make(client, custom_retry_codes={400: True, 500: False})
    sink.add(payload())
    await sink.flush()
    assert len(client.requests) == 2  # 400 retried, 500 then not
    assert listener.failed_list[0][1].status == 500
    await sink.close()


@pytest.mark.parametrize(
    "kind", [TransportErrorKind.TIMEOUT, TransportErrorKind.CONNECT, TransportErrorKind.DROPPED]
)
async def test_transport_errors_are_retried(kind: TransportErrorKind) -> None:
    client = FakeHttpClient.scripted(TransportError(kind, "boom"))
    sink, _sleep, listener = make(client)
    sink.add(payload())
    await sink.flush()
    assert len(listener.delivered_list) == 1
    assert listener.reports[0].failure_class == kind.value
    assert listener.reports[0].status is None
    await sink.close()


async def test_413_bisects_and_a_single_oversize_event_fails_for_good() -> None:
    big = "y" * 500

    async def limited(request: SentRequest) -> HttpResponse:
        events = request.events
        if len(events) > 4 or any(e.get("se_la") == big for e in events):
            return HttpResponse(413)
        return HttpResponse(200)

    client = FakeHttpClient(limited)
    sink, sleep, listener = make(client, batch_size=16)
    for n in range(15):
        sink.add(payload(n))
    sink.add({**payload(15), "se_la": big})
    await sink.flush()
    assert len(listener.delivered_list) == 15
    [(event, failure)] = listener.failed_list
    assert event.payload()["eid"] == str(uuid.UUID(int=15))
    assert failure.reason is FailureReason.OVERSIZE
    assert failure.status == 413
    assert sleep.delays == []  # splitting is not retrying
    assert listener.on_failure_calls == [(15, 1, FailureReason.OVERSIZE)]
    await sink.close()


async def test_reject_bisects_so_good_events_get_through() -> None:
    bad = {str(uuid.UUID(int=5)), str(uuid.UUID(int=11))}

    async def picky(request: SentRequest) -> HttpResponse:
        if any(e["eid"] in bad for e in request.events):
            return HttpResponse(400)
        return HttpResponse(200)

    client = FakeHttpClient(picky)
    sink, _, listener = make(client, batch_size=16)
    for n in range(16):
        sink.add(payload(n))
    await sink.flush()
    assert len(listener.delivered_list) == 14
    assert {e.payload()["eid"] for e, _ in listener.failed_list} == bad
    assert all(f.reason is FailureReason.NON_RETRYABLE_STATUS for _, f in listener.failed_list)
    await sink.close()


async def test_401_fails_the_batch_without_bisecting_in_the_tracker_table() -> None:
    client = FakeHttpClient.scripted(401)
    sink, _, listener = make(client, batch_size=8)
    for n in range(8):
        sink.add(payload(n))
    await sink.flush()
    assert len(client.requests) == 1
    assert len(listener.failed_list) == 8
    await sink.close()


async def test_setup_failures_retry_forever_and_never_fail_events() -> None:
    client = FakeHttpClient.scripted(
        401, 403, TransportError(TransportErrorKind.DNS, "no such host"), 404
    )
    seen: list[bool] = []
    sink, sleep, listener = make(
        client, status_table=StatusTable.forwarder(), retry=RetryPolicy.no_retry()
    )
    original = listener.setup_failure

    def watch(status: int | None, message: str) -> None:
        seen.append(sink.setup_failing)
        original(status, message)

    listener.setup_failure = watch  # type: ignore[method-assign]
    sink.add(payload())
    await sink.flush()
    assert listener.setup == [401, 403, None, 404]
    assert seen == [True] * 4
    assert sleep.delays == [30.0] * 4
    assert len(listener.delivered_list) == 1
    assert listener.failed_list == []
    assert not sink.setup_failing
    await sink.close()


def test_tables() -> None:
    tracker = StatusTable.tracker()
    forwarder = StatusTable.forwarder()
    assert tracker.classify(404) is StatusClass.RETRY
    assert tracker.classify(413) is StatusClass.SPLIT
    assert tracker.classify_transport(TransportErrorKind.TLS) is StatusClass.RETRY
    assert forwarder.classify_transport(TransportErrorKind.TLS) is StatusClass.SETUP
    assert forwarder.classify_transport(TransportErrorKind.TIMEOUT) is StatusClass.RETRY
    for status in (408, 425, 429, 500, 502, 503, 599):
        assert forwarder.classify(status) is StatusClass.RETRY
    for status in (400, 410, 422):
        assert forwarder.classify(status) is StatusClass.REJECT
    for status in (401, 403, 404, 501):
        assert forwarder.classify(status) is StatusClass.SETUP
    assert StatusTable.forwarder({404: StatusClass.RETRY}).classify(404) is StatusClass.RETRY


async def test_in_flight_requests_are_bounded() -> None:
    release = asyncio.Event()
    client = FakeHttpClient.held(release)
    sink, _, listener = make(client, batch_size=2, max_in_flight=3)
    for n in range(20):
        sink.add(payload(n))
    for _ in range(5):
        await asyncio.sleep(0)
    assert client.in_flight == 3
    release.set()
    await sink.flush()
    assert client.max_in_flight == 3
    assert len(listener.delivered_list) == 20
    await sink.close()


async def test_each_ready_batch_gets_an_idle_sender_and_none_waits_for_a_wake_up() -> None:
    release = asyncio.Event()
    client = FakeHttpClient.held(release)
    sink, _, listener = make(client, batch_size=2, max_in_flight=4)
    for batch in range(6):  # batches cut one at a time, each while senders sit idle
        sink.add(payload(2 * batch))
        sink.add(payload(2 * batch + 1))
        for _ in range(5):
            await asyncio.sleep(0)
        assert client.in_flight == min(batch + 1, 4)
    release.set()  # the two left over go out as senders come free, with no new cut
    await sink.flush()
    assert len(client.requests) == 6
    assert len(listener.delivered_list) == 12
    await sink.close()


async def test_retries_go_ahead_of_new_batches() -> None:
    client = FakeHttpClient.scripted(500, 500)
    sink, _, _ = make(client, batch_size=1, max_in_flight=1)
    for n in range(3):
        sink.add(payload(n))
    await sink.flush()
    order = [r.events[0]["eid"][-1] for r in client.requests]
    assert order == ["0", "0", "0", "1", "2"]
    await sink.close()


async def test_a_raising_callback_does_not_stop_delivery() -> None:
    def boom(events: Sequence[PendingEvent]) -> None:
        raise RuntimeError("callback bug")

    client = FakeHttpClient()
    sink = AsyncEmitter(URL, client=client, on_success=boom, flush_interval_s=None)
    first = sink.add_awaitable(payload(1))
    sink.flush_nowait()
    assert (await first).delivered
    second = sink.add_awaitable(payload(2))
    sink.flush_nowait()
    assert (await second).delivered
    await sink.close()
