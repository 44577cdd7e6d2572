"""The forwarder's HttpSink delivers through the emitter core and keeps its port's contract."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import orjson
import pytest
from forwarder_service.classification import StatusClass, status_table
from forwarder_service.http_sink import HttpSink
from forwarder_service.offsets import RecordSlice
from forwarder_service.ports import RecordTag
from tracking_common.emitter import (
    DeliveryFailure,
    FailureReason,
    HttpResponse,
    PendingEvent,
    RequestReport,
    RetryPolicy,
)
from tracking_common.emitter.testing import FakeHttpClient, FakeSleep, SentRequest


@dataclass(frozen=True)
class Record:
    topic: str = "events"
    partition: int = 0
    offset: int = 0
    timestamp: int = 0
    key: bytes | None = None
    value: bytes | None = None
    headers: Sequence[tuple[str, bytes]] = ()


class Listener:
    def __init__(self) -> None:
        self.delivered_tags: list[RecordTag] = []
        self.failures: list[tuple[RecordTag, DeliveryFailure]] = []
        self.reports: list[RequestReport] = []
        self.setup: list[int | None] = []

    def delivered(self, events: Sequence[PendingEvent]) -> None:
        self.delivered_tags.extend(event.tag for event in events)

    def failed(self, events: Sequence[PendingEvent], failure: DeliveryFailure) -> None:
        self.failures.extend((event.tag, failure) for event in events)

    def request_finished(self, report: RequestReport) -> None:
        self.reports.append(report)

    def setup_failure(self, status: int | None, message: str) -> None:
        self.setup.append(status)


_SLICE: RecordSlice[Hashable] = RecordSlice("tp0", 1, 0, 99, 100, 0)


def tag(offset: int) -> RecordTag:
    return RecordTag(_SLICE, Record(offset=offset))


def payload(offset: int, pad: int = 0) -> bytes:
    event = {"e": "pv", "eid": str(uuid.UUID(int=offset)), "tv": "t", "p": "web", "url": "u" * pad}
    return orjson.dumps(event)


def submit(http: HttpSink, *offsets: int, pad: int = 0) -> int:
    return http.add_encoded(
        [payload(offset, pad) for offset in offsets], [tag(offset) for offset in offsets]
    )


def sink(client: FakeHttpClient, listener: Listener, **options: object) -> HttpSink:
    return HttpSink(
        collector_url="http://collector.test",
        listener=listener,
        client=client,
        sleep=FakeSleep(),
        **options,  # type: ignore[arg-type]
    )


async def test_outcomes_reach_the_forwarder_listener_with_tags() -> None:
    async def picky(request: SentRequest) -> HttpResponse:
        bad = str(uuid.UUID(int=3))
        return HttpResponse(400 if any(e["eid"] == bad for e in request.events) else 200)

    listener = Listener()
    http = sink(FakeHttpClient(picky), listener, batch_max_events=8)
    await http.start()
    assert submit(http, *range(8)) == 8
    await http.flush()
    assert sorted(t.record.offset for t in listener.delivered_tags) == [0, 1, 2, 4, 5, 6, 7]
    [(failed_tag, failure)] = listener.failures
    assert failed_tag.record.offset == 3
    assert failure.reason is FailureReason.NON_RETRYABLE_STATUS
    assert failure.status == 400
    assert failure.error_class == "CollectorRejected"
    assert listener.reports
    assert all(r.events for r in listener.reports)
    assert http.backlog() == (0, 0)
    await http.close(1.0)


async def test_oversize_capacity_setup_and_abandon(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tracking_common.emitter")
    listener = Listener()
    client = FakeHttpClient.scripted(401)
    http = sink(
        client,
        listener,
        batch_max_bytes=1_000,
        capacity_events=3,
        retry=RetryPolicy.up_to(2),
        table=status_table("409=retry"),
    )
    await http.start()
    assert submit(http, 0, pad=2_000) == 1
    assert submit(http, 1, 2, 3) == 2  # room for two more: the caller keeps the third
    await http.flush()
    assert listener.setup == [401]
    assert [f.reason for _, f in listener.failures] == [FailureReason.OVERSIZE]
    assert sorted(t.record.offset for t in listener.delivered_tags) == [1, 2]
    await http.close(1.0)
    assert submit(http, 4) == 0
    # The forwarder logs give-ups and setup failures itself (from the listener): the core
    # logs neither, so each is one line.
    assert not [r for r in caplog.records if r.name == "tracking_common.emitter"]


async def test_close_reports_leftovers_abandoned() -> None:
    async def down(_: SentRequest) -> HttpResponse:
        return HttpResponse(503)

    listener = Listener()
    http = sink(FakeHttpClient(down), listener)
    await http.start()
    submit(http, 0, 1, 2)
    await http.close(0.05)
    assert sorted(t.record.offset for t, _ in listener.failures) == [0, 1, 2]
    assert {f.reason for _, f in listener.failures} == {FailureReason.ABANDONED}


def test_the_forwarder_table_is_the_cores_with_overrides_as_data() -> None:
    table = status_table()
    assert table.classify(401) is StatusClass.SETUP
    assert table.classify(400) is StatusClass.REJECT
    assert status_table("409=retry").classify(409) is StatusClass.RETRY
