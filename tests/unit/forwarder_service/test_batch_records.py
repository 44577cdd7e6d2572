"""The fetcher hands out the batches' own records, a batch at a time: the same records and
positions as aiokafka's, no copies."""

from __future__ import annotations

import struct
from collections.abc import Hashable, Iterator
from typing import Any

import pytest
from aiokafka import TopicPartition
from aiokafka.consumer.fetcher import FetchResult, PartitionRecords
from aiokafka.errors import CorruptRecordException
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.record.memory_records import MemoryRecords
from aiokafka.record.util import calc_crc32c
from aiokafka.structs import ConsumerRecord
from forwarder_service.batch_records import batch_records
from forwarder_service.dead_letter import ErrorClass
from forwarder_service.offsets import OffsetTracker
from forwarder_service.pipeline import Pipeline

from tests.support.forwarder_fakes import (
    TP1,
    FakeAssignment,
    FakeDeadLetters,
    FakePartitionState,
    FakeRecord,
    FakeSink,
    InMemoryMetrics,
    record_batch,
    records,
)

READ_UNCOMMITTED, READ_COMMITTED = 0, 1


@pytest.fixture
def batch_records_applied() -> Iterator[None]:
    with batch_records() as applied:
        assert applied
        yield


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


@pytest.mark.usefixtures("batch_records_applied")
def test_the_batch_records_carry_what_consumer_records_carried() -> None:
    built = records(TP1, range(5))
    fetched = _fetched(TP1, built)
    assert not any(isinstance(record, ConsumerRecord) for record in fetched)
    assert [record.offset for record in fetched] == [10, 11, 12, 13, 14]
    assert [
        (record.timestamp, record.key, record.value, list(record.headers)) for record in fetched
    ] == [(record.timestamp, record.key, record.value, list(record.headers)) for record in built]


@pytest.mark.usefixtures("batch_records_applied")
def test_a_consumer_with_a_deserializer_still_gets_consumer_records() -> None:
    fetched = _fetched(TP1, records(TP1, range(5)), value_deserializer=bytes.decode)
    assert all(isinstance(record, ConsumerRecord) for record in fetched)
    assert isinstance(fetched[0].value, str)


@pytest.mark.usefixtures("batch_records_applied")
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


# -- a batch at a time: the same records and positions as aiokafka's own iteration ----------

_ABORT, _COMMIT = 0, 1
# A v2 batch's header: the CRC at byte 17 covers everything from the attributes (byte 21, an
# int16 whose bit 5 marks a control batch) on; the last offset delta follows them.
_CRC_AT, _ATTRIBUTES_AT, _CONTROL = 17, 21, 0x20


def _batch(
    offsets: range,
    *,
    producer_id: int = -1,
    control: int | None = None,
    last_offset_delta: int | None = None,
) -> bytes:
    """A v2 batch at ``offsets`` (transactional when ``producer_id`` is set); ``control`` makes
    it a control batch holding that marker; ``last_offset_delta`` makes it look compacted."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=producer_id >= 0,
        producer_id=producer_id,
        producer_epoch=0 if producer_id >= 0 else -1,
        base_sequence=0 if producer_id >= 0 else -1,
        batch_size=1 << 20,
    )
    for delta in range(len(offsets)):
        if control is None:
            key, value = b"k%d" % (offsets[delta]), b"v%d" % (offsets[delta])
        else:
            key, value = struct.pack(">hh", 0, control), struct.pack(">hi", 0, 0)
        builder.append(delta, timestamp=1_700_000_000_000, key=key, value=value, headers=[])
    batch = bytearray(builder.build())
    batch[0:8] = offsets[0].to_bytes(8, "big")
    attributes_at = _ATTRIBUTES_AT
    if control is not None:
        (attributes,) = struct.unpack_from(">h", batch, attributes_at)
        struct.pack_into(">h", batch, attributes_at, attributes | _CONTROL)
    if last_offset_delta is not None:
        struct.pack_into(">i", batch, attributes_at + 2, last_offset_delta)
    crc = calc_crc32c(bytes(batch[attributes_at:]))
    struct.pack_into(">I", batch, _CRC_AT, crc)
    return bytes(batch)


def _take(
    fetched: bytes,
    *,
    fetch_offset: int = 0,
    aborted: list[tuple[int, int]] | None = None,
    isolation: int = READ_COMMITTED,
    max_records: int | None = None,
    one_at_a_time: bool = False,
) -> list[tuple[list[tuple[int, bytes | None]], int]]:
    """Each ``getall`` (or ``getone``) until the fetch is drained: the offsets and values it
    returned, and the partition's position after it."""
    state = FakePartitionState(fetch_offset)
    partition_records = PartitionRecords(
        TP1, MemoryRecords(fetched), aborted, fetch_offset, None, None, True, isolation
    )
    result = FetchResult(
        TP1, assignment=FakeAssignment(state), partition_records=partition_records, backoff=0
    )
    steps = []
    while result.has_more():
        if one_at_a_time:
            record = result.getone()
            taken = [] if record is None else [record]
        else:
            taken = result.getall(max_records)
        steps.append(([(record.offset, record.value) for record in taken], state.position))
    return steps


# Records 0-2; a transaction of producer 7 (3-5) aborted by the marker at 6; one of producer 8
# (7-8) committed at 9; records 10-11; a batch compacted to its first two records (12-13 of
# 12-16); a new transaction of producer 7 (17-18) committed at 19; records 20-22.
_TRANSACTIONS = b"".join(
    [
        _batch(range(0, 3)),
        _batch(range(3, 6), producer_id=7),
        _batch(range(6, 7), producer_id=7, control=_ABORT),
        _batch(range(7, 9), producer_id=8),
        _batch(range(9, 10), producer_id=8, control=_COMMIT),
        _batch(range(10, 12)),
        _batch(range(12, 14), last_offset_delta=4),
        _batch(range(17, 19), producer_id=7),
        _batch(range(19, 20), producer_id=7, control=_COMMIT),
        _batch(range(20, 23)),
    ]
)
_ABORTED = [(7, 3)]


@pytest.mark.parametrize("max_records", [None, 1, 2, 3, 5, 100])
@pytest.mark.parametrize("isolation", [READ_COMMITTED, READ_UNCOMMITTED])
@pytest.mark.parametrize("fetch_offset", [0, 1, 4, 13, 18])
def test_batches_are_taken_as_aiokafka_takes_them(
    max_records: int | None, isolation: int, fetch_offset: int
) -> None:
    def taken() -> list[tuple[list[tuple[int, bytes | None]], int]]:
        return _take(
            _TRANSACTIONS,
            fetch_offset=fetch_offset,
            aborted=_ABORTED,
            isolation=isolation,
            max_records=max_records,
        )

    aiokafkas = taken()
    with batch_records():
        assert taken() == aiokafkas
    offsets = [offset for step, _ in aiokafkas for offset, _ in step]
    if isolation == READ_COMMITTED and fetch_offset == 0:
        assert offsets == [0, 1, 2, 7, 8, 10, 11, 12, 13, 17, 18, 20, 21, 22]
    assert aiokafkas[-1][1] == 23  # past the last batch


def test_one_record_at_a_time_moves_the_position_past_each() -> None:
    aiokafkas = _take(_TRANSACTIONS, aborted=_ABORTED, one_at_a_time=True)
    with batch_records():
        steps = _take(_TRANSACTIONS, aborted=_ABORTED, one_at_a_time=True)
    assert steps == aiokafkas
    taken = [(step[0][0], position) for step, position in steps if step]
    offsets = (0, 1, 2, 7, 8, 10, 11, 12, 13, 17, 18, 20, 21, 22)
    assert taken == [(offset, offset + 1) for offset in offsets]


@pytest.mark.usefixtures("batch_records_applied")
def test_the_compacted_batchs_end_is_where_the_next_fetch_starts() -> None:
    fetched = _batch(range(12, 14), last_offset_delta=4)
    assert _take(fetched, fetch_offset=12) == [([(12, b"v12"), (13, b"v13")], 17)]


@pytest.mark.usefixtures("batch_records_applied")
def test_a_corrupt_batch_raises_as_aiokafka_raises() -> None:
    good, bad = _batch(range(0, 3)), bytearray(_batch(range(3, 6)))
    bad[-1] ^= 0xFF  # in the last record's value: the CRC no longer matches
    state = FakePartitionState(0)
    partition_records = PartitionRecords(
        TP1, MemoryRecords(good + bytes(bad)), [], 0, None, None, True, READ_COMMITTED
    )
    result = FetchResult(
        TP1, assignment=FakeAssignment(state), partition_records=partition_records, backoff=0
    )
    assert [record.offset for record in result.getall(3)] == [0, 1, 2]
    with pytest.raises(CorruptRecordException):
        result.getall(3)
    assert state.position == 3  # nothing of the corrupt batch was taken
