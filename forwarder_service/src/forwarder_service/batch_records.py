"""aiokafka's fetcher, made to hand out the record batches' own records, a batch at a time.

For every record ``getmany`` returns, aiokafka first builds the record from the batch (in C:
offset, timestamp, key, value, headers), then copies it into a ``ConsumerRecord`` dataclass
(a Python ``__init__`` of eleven fields, the headers copied into a tuple, the sizes
measured). The forwarder reads only the offset, timestamp, key, value and headers, which the
batch's record has (:class:`~forwarder_service.ports.RecordLike`); the topic and partition are
those of the partition it was fetched for. And aiokafka hands each record through three
Python frames (``PartitionRecords.__next__``, its generator, ``FetchResult.getall``'s loop),
about 0.2 us a record. :func:`use_batch_records` makes ``PartitionRecords`` yield the batch's
records as they are, and ``getall`` take them a batch at a time: ``list(batch)`` and
``islice`` in C.

Only that copy and those frames are skipped. Everything the delivery guarantees rest on stays
aiokafka's: commits, seeks, pause and resume, rebalances, and the position: a fetch result is
still checked against the partition's position before it is returned, and the position moves
to one past the last record returned (or past the last batch, as aiokafka moves it). Batches
are read as :func:`_record_runs` reads them, which follows aiokafka 0.14's
``PartitionRecords._unpack_records`` step for step (CRC checks, aborted transactions and
control batches skipped before a record is built, records below the fetch offset dropped) and
calls its own helpers for the transaction markers. A consumer with a key or value deserializer
still gets ConsumerRecords, one at a time, from aiokafka's own generator.

The patch is process-wide and reaches into private methods, so only the ``run`` command
applies it (the forwarder's process has one consumer; ``replay`` keeps ConsumerRecords), and
it is skipped, with a warning, if the aiokafka in use lacks one of them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import chain, islice
from typing import Any, Final

from aiokafka.consumer.fetcher import READ_COMMITTED, FetchResult, PartitionRecords
from aiokafka.errors import CorruptRecordException

__all__ = ["batch_records", "use_batch_records"]

logger = logging.getLogger(__name__)

# What the replacements below call or stand in for, besides the dunders every class has.
_REQUIRED: Final = {
    PartitionRecords: ("_unpack_records", "_consume_aborted_up_to", "_contains_abort_marker"),
    FetchResult: ("getall", "check_assignment", "has_more", "_update_position"),
}
_aiokafka_init = PartitionRecords.__init__
_PATCHED: Final = ((PartitionRecords, ("__init__", "__next__")), (FetchResult, ("getall",)))
# aiokafka's own methods, for batch_records() to put back.
_AIOKAFKAS: Final = {
    (owner, name): owner.__dict__[name]
    for owner, names in _PATCHED
    for name in names
    if name in owner.__dict__
}


def _record_runs(partition_records: Any) -> Iterator[list[Any]]:
    """Each fetched batch's records from the fetch offset on, as one list (aiokafka's
    ``_unpack_records``, a batch at a time); ``next_fetch_offset`` moves past a batch when
    the next one is asked for, as aiokafka moves it."""
    self = partition_records
    tp, records = self._tp, self._records
    while records.has_next():
        batch = records.next_batch()
        if self._check_crcs and not batch.validate_crc():
            # The iterator is closed after the exception: the batches are fetched again.
            raise CorruptRecordException(f"Invalid CRC - {tp}")
        if self._isolation_level == READ_COMMITTED and batch.producer_id is not None:
            self._consume_aborted_up_to(batch.base_offset)
            if batch.is_control_batch and self._contains_abort_marker(batch):
                self._aborted_producers.discard(batch.producer_id)
            if batch.is_transactional and batch.producer_id in self._aborted_producers:
                self.next_fetch_offset = batch.next_offset
                continue
        if batch.is_control_batch:  # skipped whatever the isolation level
            self.next_fetch_offset = batch.next_offset
            continue
        run = list(batch)
        if run and run[0].offset < self.next_fetch_offset:
            # The fetch started inside the batch (a seek, or a compressed batch).
            first = self.next_fetch_offset
            run = [record for record in run if record.offset >= first]
        if run:
            yield run
        # Past the batch's last offset even if compaction removed its last records, so the
        # same batch is not fetched again.
        self.next_fetch_offset = batch.next_offset


def _init(self: Any, *args: Any, **kwargs: Any) -> None:
    _aiokafka_init(self, *args, **kwargs)
    if not (self._key_deserializer or self._value_deserializer):
        self._records_iterator = chain.from_iterable(_record_runs(self))


def _next_record(self: Any) -> Any:
    """One record (``getone``), the position one past it."""
    try:
        record = next(self._records_iterator)
    except StopIteration:
        self._records_iterator = None  # breaks the reference cycle, as aiokafka does
        raise
    if record.offset >= self.next_fetch_offset:
        self.next_fetch_offset = record.offset + 1
    return record


def _getall(self: Any, max_records: int | None = None) -> list[Any]:
    """Up to ``max_records`` records (all when None), taken in C, the position one past the
    last (aiokafka's ``FetchResult.getall``)."""
    if not self.check_assignment(self._topic_partition) or not self.has_more():
        return []
    fetched = self._partition_records
    iterator = fetched._records_iterator
    taken = [] if iterator is None else list(islice(iterator, max_records))
    if taken and taken[-1].offset >= fetched.next_fetch_offset:
        fetched.next_fetch_offset = taken[-1].offset + 1
    self._update_position()
    if max_records is None or len(taken) < max_records:
        self._partition_records = None  # drained (a full take leaves it for the next call)
    return taken


def use_batch_records() -> bool:
    """Make aiokafka's fetcher yield the record batches' own records, a batch at a time
    (idempotent); False, with a warning, when this aiokafka does not read batches the way it
    was written for."""
    missing = [
        f"{owner.__name__}.{name}"
        for owner, names in _REQUIRED.items()
        for name in names
        if not hasattr(owner, name)
    ]
    if missing:
        logger.warning("aiokafka lacks %s: keeping its ConsumerRecords", ", ".join(missing))
        return False
    PartitionRecords.__init__ = _init
    PartitionRecords.__next__ = _next_record
    FetchResult.getall = _getall
    return True


@contextmanager
def batch_records() -> Iterator[bool]:
    """:func:`use_batch_records` for the block, aiokafka's own methods again after it (for
    tests and benchmarks that compare the two in one process); yields whether it applied."""
    try:
        yield use_batch_records()
    finally:
        for (owner, name), method in _AIOKAFKAS.items():
            setattr(owner, name, method)
