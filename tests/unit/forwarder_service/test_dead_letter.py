"""Dead-letter headers, their ordering before commits, and the replay filters."""

from __future__ import annotations

import asyncio
from collections.abc import Hashable

from forwarder_service.dead_letter import DeadLetter, ErrorClass
from forwarder_service.offsets import OffsetTracker
from forwarder_service.pipeline import Pipeline
from forwarder_service.replay import ReplayFilter, parse_replay_args

from tests.support.forwarder_fakes import TP0, FakeDeadLetters, FakeSink, InMemoryMetrics, records


def _letter(**changes: object) -> DeadLetter:
    fields: dict[str, object] = {
        "topic": "events",
        "partition": 2,
        "offset": 41,
        "key": b"k",
        "value": b"v",
        "headers": [("traceparent", b"tp"), ("__connect.errors.offset", b"7")],
        "timestamp_ms": 5,
        "error_class": ErrorClass.NON_RETRYABLE_STATUS,
        "exception_class": "NonRetryableStatus",
        "message": "collector answered 400",
        "status": 400,
        "attempts": 2,
        "first_failure_ms": 1000,
        "last_failure_ms": 2000,
    }
    fields.update(changes)
    return DeadLetter(**fields)  # type: ignore[arg-type]


def test_headers_carry_the_connect_names_and_the_http_context() -> None:
    headers = _letter().dlq_headers()
    assert headers[0] == ("traceparent", b"tp")  # original headers first
    found = dict(headers)
    assert found["__connect.errors.topic"] == b"events"
    assert found["__connect.errors.partition"] == b"2"
    assert found["__connect.errors.offset"] == b"41"  # the earlier dead-lettering's is replaced
    assert [name for name, _ in headers].count("__connect.errors.offset") == 1
    assert found["__connect.errors.stage"] == b"HTTP_SEND"
    assert found["__connect.errors.exception.class.name"] == b"NonRetryableStatus"
    assert found["__connect.errors.exception.message"] == b"collector answered 400"
    assert found["x-forwarder.error.class"] == b"non_retryable_status"
    assert found["x-forwarder.http.status"] == b"400"
    assert found["x-forwarder.attempts"] == b"2"
    assert found["x-forwarder.first_failure_ms"] == b"1000"
    assert found["x-forwarder.last_failure_ms"] == b"2000"


def test_undecodable_records_have_no_status_and_the_deserialize_stage() -> None:
    found = dict(_letter(error_class=ErrorClass.INVALID_RECORD, status=None).dlq_headers())
    assert found["__connect.errors.stage"] == b"DESERIALIZE"
    assert "x-forwarder.http.status" not in found


async def test_offsets_settle_only_once_the_dead_letter_is_acknowledged() -> None:
    tracker: OffsetTracker[Hashable] = OffsetTracker()
    tracker.assign([TP0])
    gate = asyncio.Event()
    dlq = FakeDeadLetters(gate=gate)
    pipeline = Pipeline(tracker=tracker, dead_letters=dlq, metrics=InMemoryMetrics().metrics)
    sink = FakeSink(listener=pipeline)
    pipeline.bind(sink)
    await pipeline.start()
    try:
        pipeline.accept(TP0, records(TP0, range(3), poison=[0]))
        sink.deliver_all()
        assert not await pipeline.drain(None, timeout_s=0.05)
        assert tracker.committable() == {}  # a later success never commits past it
        gate.set()
        assert await pipeline.drain(None, timeout_s=5)
        assert tracker.committable() == {TP0: 3}
        assert len(dlq.letters) == 1
    finally:
        await pipeline.stop()


def test_replay_filter_by_class_and_time() -> None:
    headers = [("x-forwarder.error.class", b"oversize"), ("x-forwarder.last_failure_ms", b"500")]
    assert ReplayFilter().matches(headers, 0)
    assert ReplayFilter(error_classes=frozenset({"oversize"})).matches(headers, 0)
    assert not ReplayFilter(error_classes=frozenset({"invalid_record"})).matches(headers, 0)
    assert ReplayFilter(since_ms=500, until_ms=501).matches(headers, 0)
    assert not ReplayFilter(since_ms=501).matches(headers, 0)
    assert not ReplayFilter(until_ms=500).matches(headers, 0)
    # Without a failure time, the record's timestamp counts.
    assert ReplayFilter(since_ms=10).matches([], 10)


def test_replay_arguments() -> None:
    args = parse_replay_args(
        ["--dry-run", "--error-class", "a", "--error-class", "b", "--since", "1970-01-01T00:00:01"]
    )
    assert args.dry_run
    assert args.error_class == ["a", "b"]
    assert args.since == 1000
