"""The pipeline settles offsets only after delivery or an acknowledged dead letter."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass

import orjson
import pytest
from forwarder_service.dead_letter import H_ERROR_CLASS, H_HTTP_STATUS, H_OFFSET, ErrorClass
from forwarder_service.errors import DeadLetterWriteError
from forwarder_service.offsets import OffsetTracker
from forwarder_service.pipeline import Pipeline
from tracking_common.emitter import FailureReason, PendingEvent, RequestReport

from tests.support.forwarder_fakes import (
    TP0,
    TP1,
    FakeDeadLetters,
    FakeSink,
    InMemoryMetrics,
    records,
)


@dataclass
class Rig:
    pipeline: Pipeline
    sink: FakeSink
    dlq: FakeDeadLetters
    tracker: OffsetTracker[Hashable]
    metrics: InMemoryMetrics


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    tracker: OffsetTracker[Hashable] = OffsetTracker()
    tracker.assign([TP0, TP1])
    metrics = InMemoryMetrics()
    dlq = FakeDeadLetters()
    pipeline = Pipeline(tracker=tracker, dead_letters=dlq, metrics=metrics.metrics)
    sink = FakeSink(listener=pipeline)
    pipeline.bind(sink)
    await pipeline.start()
    yield Rig(pipeline, sink, dlq, tracker, metrics)
    await pipeline.stop()


async def _settled(rig: Rig) -> None:
    assert await rig.pipeline.drain(None, timeout_s=5)


async def test_delivered_events_become_committable(rig: Rig) -> None:
    assert rig.pipeline.accept(TP0, records(TP0, range(5))) is None
    assert len(rig.sink.buffered) == 5
    assert rig.tracker.committable() == {}
    rig.sink.deliver_all()
    assert rig.tracker.committable() == {TP0: 5}
    assert rig.metrics.points("tracking_forwarder_events_delivered") == {(): 5.0}
    assert rig.metrics.points("tracking_forwarder_events_consumed") == {(): 5.0}


async def test_payload_is_handed_over_as_recorded(rig: Rig) -> None:
    [record] = records(TP0, [0])
    rig.pipeline.accept(TP0, [record])
    payload, tag = rig.sink.buffered[0]
    # The payload object's own bytes, sliced from the record's value: never re-encoded.
    assert bytes(payload) in (record.value or b"")
    assert orjson.loads(payload) == orjson.loads(record.value or b"")["data"]["payload"]
    assert "stm" not in orjson.loads(payload)
    assert tag.record is record
    assert tag.slice.first == tag.slice.last == 0


async def test_a_later_delivery_does_not_commit_past_an_earlier_pending_one(rig: Rig) -> None:
    rig.pipeline.accept(TP0, records(TP0, range(10)))
    rig.sink.deliver_all(lambda t: t.record.offset >= 5)
    assert rig.tracker.committable() == {}
    rig.sink.deliver_all()
    assert rig.tracker.committable() == {TP0: 10}


async def test_poison_record_is_dead_lettered_and_consumption_goes_on(rig: Rig) -> None:
    rig.pipeline.accept(TP0, records(TP0, range(4), poison=[1]))
    assert len(rig.sink.buffered) == 3
    rig.sink.deliver_all()
    await _settled(rig)
    assert rig.tracker.committable() == {TP0: 4}
    [letter] = rig.dlq.letters
    assert letter.offset == 1
    assert letter.value == b"not json"
    assert letter.key == b"key-1"
    assert letter.error_class is ErrorClass.INVALID_RECORD
    assert letter.exception_class == "RecordContractError"
    assert "invalid_json" in letter.message
    headers = dict(letter.dlq_headers())
    assert headers[H_OFFSET] == b"1"
    assert headers["event-id"] == b"x"
    points = rig.metrics.points("tracking_forwarder_events_dead_lettered")
    assert points == {(("reason", "invalid_record"),): 1.0}


async def test_a_record_the_decoder_chokes_on_is_dead_lettered_not_fatal(rig: Rig) -> None:
    # A list where the contract wants a string made the decoder raise TypeError, not
    # RecordContractError: raised here it would stop the service on this record for ever.
    taken = records(TP0, range(3))
    document = orjson.loads(taken[1].value or b"")
    document["data"]["source"] = []
    odd = dataclasses.replace(taken[1], value=orjson.dumps(document))
    assert rig.pipeline.accept(TP0, [taken[0], odd, taken[2]]) is None
    assert len(rig.sink.buffered) == 2
    rig.sink.deliver_all()
    await _settled(rig)
    [letter] = rig.dlq.letters
    assert (letter.offset, letter.error_class) == (1, ErrorClass.INVALID_RECORD)
    assert letter.value == odd.value
    assert rig.tracker.committable() == {TP0: 3}


async def test_rejected_events_are_dead_lettered_with_the_sink_account(rig: Rig) -> None:
    rig.pipeline.accept(TP0, records(TP0, [0]))
    rig.pipeline.accept(TP0, records(TP0, [1, 2]))
    rig.sink.deliver_all(lambda t: t.record.offset != 1)
    rig.dlq.gate = asyncio.Event()
    rig.sink.fail_all(FailureReason.NON_RETRYABLE_STATUS, status=400)
    await asyncio.sleep(0)
    # Not committable until the dead-letter topic acknowledged.
    assert rig.tracker.committable() == {TP0: 1}
    rig.dlq.gate.set()
    await _settled(rig)
    assert rig.tracker.committable() == {TP0: 3}
    [letter] = rig.dlq.letters
    headers = dict(letter.dlq_headers())
    assert headers[H_ERROR_CLASS] == b"non_retryable_status"
    assert headers[H_HTTP_STATUS] == b"400"
    assert letter.attempts == 3


@pytest.mark.parametrize(
    ("kind", "error_class"),
    [
        (FailureReason.RETRIES_EXHAUSTED, ErrorClass.RETRIES_EXHAUSTED),
        (FailureReason.OVERSIZE, ErrorClass.OVERSIZE),
    ],
)
async def test_other_give_ups_are_dead_lettered_by_reason(
    rig: Rig, kind: FailureReason, error_class: ErrorClass
) -> None:
    rig.pipeline.accept(TP0, records(TP0, [0]))
    rig.sink.fail_all(kind, status=503)
    await _settled(rig)
    assert [letter.error_class for letter in rig.dlq.letters] == [error_class]


async def test_abandoned_events_are_neither_dead_lettered_nor_settled(rig: Rig) -> None:
    rig.pipeline.accept(TP0, records(TP0, range(2)))
    rig.sink.fail_all(FailureReason.ABANDONED)
    assert not await rig.pipeline.drain(None, timeout_s=0.05)
    assert rig.dlq.letters == []
    assert rig.tracker.committable() == {}


async def test_late_results_for_a_revoked_partition_are_ignored(rig: Rig) -> None:
    rig.pipeline.accept(TP0, records(TP0, range(2)))
    rig.pipeline.accept(TP1, records(TP1, range(2)))
    rig.tracker.revoke([TP0])
    rig.sink.fail_all(FailureReason.NON_RETRYABLE_STATUS, lambda t: t.tp == TP0)
    rig.sink.deliver_all()
    await _settled(rig)
    assert rig.dlq.letters == []
    assert rig.tracker.committable() == {TP1: 2}


async def test_records_of_a_partition_not_owned_are_not_taken(rig: Rig) -> None:
    rig.tracker.revoke([TP1])
    assert rig.pipeline.accept(TP1, records(TP1, range(2))) is None
    assert rig.sink.buffered == []


async def test_a_full_sink_stops_taking_and_untakes_the_rest(rig: Rig) -> None:
    rig.sink.capacity = 3
    assert rig.pipeline.accept(TP0, records(TP0, range(10, 16))) == 3
    assert rig.tracker.outstanding() == 3
    rig.sink.deliver_all()
    assert rig.tracker.committable() == {TP0: 13}
    # The caller seeks back to offset 13; the same records can be taken again.
    rig.sink.capacity = 100
    assert rig.pipeline.accept(TP0, records(TP0, range(13, 16))) is None
    rig.sink.deliver_all()
    assert rig.tracker.committable() == {TP0: 16}


async def test_a_dead_letter_failure_is_fatal_and_commits_nothing_past_it(rig: Rig) -> None:
    rig.dlq.broken = True
    rig.pipeline.accept(TP0, records(TP0, [0]))
    rig.pipeline.accept(TP0, records(TP0, [1, 2], poison=[1]))
    rig.sink.deliver_all()
    assert not await rig.pipeline.drain(None, timeout_s=5)
    assert isinstance(rig.pipeline.failure, DeadLetterWriteError)
    assert rig.tracker.committable() == {TP0: 1}
    # Nothing more is taken once failed.
    assert rig.pipeline.accept(TP0, records(TP0, [3])) is None
    assert rig.sink.buffered == []


async def test_drain_waits_only_for_the_given_partitions(rig: Rig) -> None:
    rig.pipeline.accept(TP0, records(TP0, range(2)))
    rig.pipeline.accept(TP1, records(TP1, range(2)))
    drain = asyncio.create_task(rig.pipeline.drain([TP0], timeout_s=5))
    await asyncio.sleep(0)
    assert not drain.done()
    rig.sink.deliver_all(lambda t: t.tp == TP0)
    assert await drain
    assert rig.sink.flushes == 1
    assert rig.tracker.outstanding([TP1]) == 2


async def test_drain_gives_up_at_the_deadline(rig: Rig) -> None:
    rig.pipeline.accept(TP0, records(TP0, range(2)))
    assert not await rig.pipeline.drain(None, timeout_s=0.01)


async def test_backlog_counts_dead_letters_being_written(rig: Rig) -> None:
    rig.dlq.gate = asyncio.Event()
    rig.pipeline.accept(TP0, records(TP0, range(3), poison=[0]))
    assert rig.pipeline.backlog()[0] == 3
    rig.dlq.gate.set()
    await asyncio.sleep(0.01)
    assert rig.pipeline.backlog()[0] == 2


async def test_request_reports_feed_metrics(rig: Rig) -> None:
    rig.pipeline.accept(TP0, records(TP0, range(4)))
    events = [PendingEvent(payload, len(payload), tag) for payload, tag in rig.sink.buffered]
    rig.pipeline.request_finished(
        RequestReport(
            events=events,
            status=503,
            failure_class="5xx",
            start_ns=0,
            end_ns=2_000_000,
            attempt=1,
            will_retry=True,
            body_bytes=100,
        )
    )
    rig.pipeline.setup_failure(401, "unauthorized")
    assert rig.metrics.points("tracking_forwarder_retries") == {(("failure_class", "5xx"),): 1.0}
    assert rig.metrics.points("tracking_forwarder_setup_failures") == {(("status", "401"),): 1.0}
    assert rig.metrics.points("tracking_forwarder_batch_size_events") == {(): 1.0}
