"""The fetcher hands out the batches' own records: same fields and positions, no copies."""

from __future__ import annotations

from collections.abc import Hashable, Iterator
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.consumer.fetcher import PartitionRecords
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.structs import ConsumerRecord
from forwarder_service.batch_records import use_batch_records
from forwarder_service.dead_letter import ErrorClass
from forwarder_service.offsets import OffsetTracker
from forwarder_service.pipeline import Pipeline

from tests.support.forwarder_fakes import (
    TP1,
    FakeDeadLetters,
    FakeRecord,
    FakeSink,
    InMemoryMetrics,
    record_batch,
    records,
)

READ_COMMITTED = 1


@pytest.fixture
def batch_records() -> Iterator[None]:
    built = PartitionRecords.__dict__["_consumer_record"]
    assert use_batch_records()
    yield
    PartitionRecords._consumer_record = built


def _fetched(tp: TopicPartition, source: list[FakeRecord], **options: Any) -> list[Any]:
    """``source`` (five records) as the fetcher yields them from one batch at offset 10."""
    fetched = PartitionRecords(
        tp,
        MemoryRecords(record_batch(source, 10)),
        [],
        10,
        options.get("key_deserializer"),
        options.get("value_deserializer"),
        True,
        READ_COMMITTED,
    )
    result = list(fetched)
    assert fetched.next_fetch_offset == 15  # positions advance as with ConsumerRecords
    return result


def test_without_the_patch_the_fetcher_builds_consumer_records() -> None:
    fetched = _fetched(TP1, records(TP1, range(5)))
    assert all(isinstance(record, ConsumerRecord) for record in fetched)


@pytest.mark.usefixtures("batch_records")
def test_the_batch_records_carry_what_consumer_records_carried() -> None:
    built = records(TP1, range(5))
    fetched = _fetched(TP1, built)
    assert not any(isinstance(record, ConsumerRecord) for record in fetched)
    assert [record.offset for record in fetched] == [10, 11, 12, 13, 14]
    assert [
        (record.timestamp, record.key, record.value, list(record.headers)) for record in fetched
    ] == [(record.timestamp, record.key, record.value, list(record.headers)) for record in built]


@pytest.mark.usefixtures("batch_records")
def test_a_consumer_with_a_deserializer_still_gets_consumer_records() -> None:
    fetched = _fetched(TP1, records(TP1, range(5)), value_deserializer=bytes.decode)
    assert all(isinstance(record, ConsumerRecord) for record in fetched)
    assert isinstance(fetched[0].value, str)


@pytest.mark.usefixtures("batch_records")
async def test_a_batch_record_is_dead_lettered_with_its_partitions_topic_and_partition() -> None:
    tracker: OffsetTracker[Hashable] = OffsetTracker()
    tracker.assign([TP1])
    dlq = FakeDeadLetters()
    pipeline = Pipeline(tracker=tracker, dead_letters=dlq, metrics=InMemoryMetrics().metrics)
    sink = FakeSink(listener=pipeline)
    pipeline.bind(sink)
    await pipeline.start()
    fetched = _fetched(TP1, records(TP1, range(5), poison=(2,)))
    assert pipeline.accept(TP1, fetched) is None
    sink.deliver_all()
    assert await pipeline.drain(None, timeout_s=5)
    [letter] = dlq.letters
    assert (letter.topic, letter.partition, letter.offset) == (TP1.topic, TP1.partition, 12)
    assert letter.error_class is ErrorClass.INVALID_RECORD
    assert letter.value == fetched[2].value
    assert letter.headers == list(fetched[2].headers)
    assert tracker.committable() == {TP1: 15}
    await pipeline.stop()
