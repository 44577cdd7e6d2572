"""The forwarder's failure classes, end to end through the pipeline and the HTTP sink.

The collector is the emitter core's fake HTTP client and backoff sleeps are instant, so these
run in milliseconds; what is checked is each record's fate: delivered (offset settles),
dead-lettered with the reason, or held while the collector's set-up is broken.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass

import pytest
from forwarder_service.classification import StatusClass, status_table
from forwarder_service.dead_letter import ErrorClass
from forwarder_service.http_sink import HttpSink
from forwarder_service.offsets import OffsetTracker
from forwarder_service.pipeline import Pipeline
from tracking_common.emitter import RetryPolicy
from tracking_common.emitter.errors import TransportError, TransportErrorKind
from tracking_common.emitter.ports import HttpResponse
from tracking_common.emitter.testing import FakeHttpClient, FakeSleep, SentRequest
from tracking_common.record import decode_record

from tests.support.forwarder_fakes import TP0, FakeDeadLetters, FakeRecord, InMemoryMetrics, records

pytestmark = pytest.mark.timeout(10)

Answer = HttpResponse | TransportError
Handler = Callable[[SentRequest], Awaitable[Answer]]


@dataclass
class Rig:
    pipeline: Pipeline
    sink: HttpSink
    http: FakeHttpClient
    sleep: FakeSleep
    dlq: FakeDeadLetters
    tracker: OffsetTracker[Hashable]
    metrics: InMemoryMetrics

    async def settle(self, taken: list[FakeRecord]) -> None:
        assert self.pipeline.accept(TP0, taken) is None
        assert await self.pipeline.drain(None, timeout_s=5)


RigFactory = Callable[..., Awaitable[Rig]]


@pytest.fixture
async def make_rig() -> AsyncIterator[RigFactory]:
    built: list[Rig] = []

    async def make(
        handler: Handler,
        *,
        overrides: str = "",
        max_attempts: int = 0,
        batch_max_events: int = 10,
    ) -> Rig:
        tracker: OffsetTracker[Hashable] = OffsetTracker()
        tracker.assign([TP0])
        metrics = InMemoryMetrics()
        dlq = FakeDeadLetters()
        pipeline = Pipeline(tracker=tracker, dead_letters=dlq, metrics=metrics.metrics)
        http, sleep = FakeHttpClient(handler), FakeSleep()
        sink = HttpSink(
            collector_url="http://collector.test",
            listener=pipeline,
            table=status_table(overrides),
            batch_max_events=batch_max_events,
            linger_s=0.001,
            retry=RetryPolicy(
                max_attempts=max_attempts or None, base_delay_s=0.01, max_delay_s=0.1
            ),
            setup_backoff_s=30.0,
            sleep=sleep,
            client=http,
        )
        pipeline.bind(sink)
        await pipeline.start()
        await sink.start()
        rig = Rig(pipeline, sink, http, sleep, dlq, tracker, metrics)
        built.append(rig)
        return rig

    yield make
    for rig in built:
        await rig.sink.close(timeout_s=1)
        await rig.pipeline.stop()


def _eid(record: FakeRecord) -> str:
    return decode_record(record.value).payload["eid"]


def _answer(status: int, **headers: str) -> Handler:
    async def handler(_: SentRequest) -> Answer:
        return HttpResponse(status, headers)

    return handler


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (200, StatusClass.SUCCESS),
        (204, StatusClass.SUCCESS),
        (408, StatusClass.RETRY),
        (425, StatusClass.RETRY),
        (429, StatusClass.RETRY),
        (500, StatusClass.RETRY),
        (503, StatusClass.RETRY),
        (599, StatusClass.RETRY),
        (413, StatusClass.SPLIT),
        (400, StatusClass.REJECT),
        (410, StatusClass.REJECT),
        (422, StatusClass.REJECT),
        (409, StatusClass.REJECT),
        (401, StatusClass.SETUP),
        (403, StatusClass.SETUP),
        (404, StatusClass.SETUP),
        (501, StatusClass.SETUP),
        (302, StatusClass.SETUP),
    ],
)
def test_the_default_table_follows_the_failure_classes(status: int, expected: StatusClass) -> None:
    assert status_table().classify(status) is expected


def test_tls_and_dns_errors_are_setup_failures_other_transport_errors_retry() -> None:
    table = status_table()
    assert table.classify_transport(TransportErrorKind.TLS) is StatusClass.SETUP
    assert table.classify_transport(TransportErrorKind.DNS) is StatusClass.SETUP
    assert table.classify_transport(TransportErrorKind.TIMEOUT) is StatusClass.RETRY
    assert table.classify_transport(TransportErrorKind.CONNECT) is StatusClass.RETRY


def test_overrides_change_the_table() -> None:
    table = status_table("404=retry, 409=fail, 520-529=reject")
    assert table.classify(404) is StatusClass.RETRY
    assert table.classify(409) is StatusClass.FAIL
    assert table.classify(525) is StatusClass.REJECT
    assert table.classify(401) is StatusClass.SETUP


async def test_an_event_rejected_with_400_is_dead_lettered_and_its_batch_mates_delivered(
    make_rig: RigFactory,
) -> None:
    taken = records(TP0, range(10))
    bad = _eid(taken[6])

    async def handler(request: SentRequest) -> Answer:
        eids = {event["eid"] for event in request.events}
        return HttpResponse(400 if bad in eids else 200)

    rig = await make_rig(handler)
    await rig.settle(taken)
    assert [(letter.offset, letter.status) for letter in rig.dlq.letters] == [(6, 400)]
    assert rig.dlq.letters[0].error_class is ErrorClass.NON_RETRYABLE_STATUS
    assert rig.tracker.committable() == {TP0: 10}
    assert rig.metrics.points("tracking_forwarder_events_delivered") == {(): 9.0}


async def test_413_splits_the_batch_until_it_fits_and_nothing_is_dead_lettered(
    make_rig: RigFactory,
) -> None:
    async def handler(request: SentRequest) -> Answer:
        return HttpResponse(413 if len(request.events) > 3 else 200)

    rig = await make_rig(handler)
    await rig.settle(records(TP0, range(10)))
    assert rig.dlq.letters == []
    assert rig.tracker.committable() == {TP0: 10}
    accepted = [len(request.events) for request in rig.http.requests if len(request.events) <= 3]
    assert sum(accepted) == 10  # each event went through once, in a batch that fit


async def test_a_single_event_refused_with_413_is_dead_lettered_as_oversize_not_retried(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(_answer(413))
    await rig.settle(records(TP0, range(4)))
    assert sorted(letter.offset for letter in rig.dlq.letters) == [0, 1, 2, 3]
    assert {letter.error_class for letter in rig.dlq.letters} == {ErrorClass.OVERSIZE}
    # Halving 4 -> 2 -> 1: no request is ever repeated as it was.
    assert len(rig.http.requests) == 1 + 2 + 4
    assert rig.tracker.committable() == {TP0: 4}


async def test_transient_failures_are_retried_honouring_retry_after_and_lose_nothing(
    make_rig: RigFactory,
) -> None:
    answers = [HttpResponse(503, {"Retry-After": "7"}), HttpResponse(500), HttpResponse(429)]

    async def handler(_: SentRequest) -> Answer:
        if answers:
            return answers.pop(0)
        return HttpResponse(200)

    rig = await make_rig(handler)
    await rig.settle(records(TP0, range(5)))
    assert rig.dlq.letters == []
    assert rig.tracker.committable() == {TP0: 5}
    assert 7.0 in rig.sleep.delays
    retries = rig.metrics.points("tracking_forwarder_retries")
    assert sum(retries.values()) == 3


async def test_network_errors_are_retried(make_rig: RigFactory) -> None:
    answers: list[Answer] = [TransportError(TransportErrorKind.CONNECT, "refused")]

    async def handler(_: SentRequest) -> Answer:
        return answers.pop(0) if answers else HttpResponse(200)

    rig = await make_rig(handler)
    await rig.settle(records(TP0, range(3)))
    assert rig.dlq.letters == []
    assert rig.tracker.committable() == {TP0: 3}


async def test_retries_run_out_only_when_capped_and_then_dead_letter(
    make_rig: RigFactory,
) -> None:
    rig = await make_rig(_answer(503), max_attempts=3)
    await rig.settle(records(TP0, range(2)))
    assert {letter.error_class for letter in rig.dlq.letters} == {ErrorClass.RETRIES_EXHAUSTED}
    assert {(letter.attempts, letter.status) for letter in rig.dlq.letters} == {(3, 503)}
    assert rig.tracker.committable() == {TP0: 2}


async def test_a_setup_failure_dead_letters_nothing_and_delivers_once_fixed(
    make_rig: RigFactory,
) -> None:
    fixed = asyncio.Event()
    retrying = asyncio.Event()
    refusals = [401]

    async def handler(_: SentRequest) -> Answer:
        if refusals:
            return HttpResponse(refusals.pop())
        retrying.set()  # the retry after the set-up backoff waits until the "fix"
        await fixed.wait()
        return HttpResponse(200)

    rig = await make_rig(handler)
    assert rig.pipeline.accept(TP0, records(TP0, range(5))) is None
    async with asyncio.timeout(5):
        await retrying.wait()
    assert _failing(rig.sink)
    assert rig.tracker.committable() == {}
    assert rig.metrics.points("tracking_forwarder_setup_failures") == {(("status", "401"),): 1.0}
    assert 30.0 in rig.sleep.delays  # the long set-up backoff, not the transient one
    fixed.set()
    assert await rig.pipeline.drain(None, timeout_s=5)
    assert rig.dlq.letters == []
    assert rig.tracker.committable() == {TP0: 5}
    assert not _failing(rig.sink)


def _failing(sink: HttpSink) -> bool:
    return sink.setup_failing


async def test_an_override_turns_a_setup_status_into_a_retried_one(make_rig: RigFactory) -> None:
    answers = [404, 404]

    async def handler(_: SentRequest) -> Answer:
        return HttpResponse(answers.pop(0) if answers else 200)

    rig = await make_rig(handler, overrides="404=retry")
    await rig.settle(records(TP0, range(3)))
    assert rig.dlq.letters == []
    assert rig.metrics.points("tracking_forwarder_setup_failures") == {}
    assert 30.0 not in rig.sleep.delays
