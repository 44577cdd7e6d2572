"""aiokafka's fetcher, made to hand out the record batches' own records instead of
``ConsumerRecord``s.

For every record ``getmany`` returns, aiokafka first builds the record from the batch (in C:
offset, timestamp, key, value, headers), then copies it into a ``ConsumerRecord`` dataclass
(a Python ``__init__`` of eleven fields, the headers copied into a tuple, the sizes
measured). The forwarder reads only the offset, timestamp, key, value and headers, which the
batch's record has (:class:`~forwarder_service.ports.RecordLike`); the topic and partition are
those of the partition it was fetched for. :func:`use_batch_records` makes
``PartitionRecords`` yield the batch's record as it is.

Only that copy is skipped. Everything the delivery guarantees rest on stays aiokafka's:
positions (advanced by the same iterator, record by record), commits, seeks, pause and
resume, rebalances, aborted transactions and control batches (skipped before a record is
built), CRC checks. A consumer with a key or value deserializer still gets ConsumerRecords.

The patch is process-wide and reaches into a private method, so only the ``run`` command
applies it (the forwarder's process has one consumer; ``replay`` keeps ConsumerRecords), and
it is skipped, with a warning, if the aiokafka in use lacks the method.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from aiokafka.consumer.fetcher import PartitionRecords

__all__ = ["use_batch_records"]

logger = logging.getLogger(__name__)

_BUILD: Final = "_consumer_record"
_as_consumer_record = getattr(PartitionRecords, _BUILD, None)


def _batch_record(partition_records: Any, tp: Any, record: Any) -> Any:
    if partition_records._key_deserializer or partition_records._value_deserializer:
        return _as_consumer_record(partition_records, tp, record)  # type: ignore[misc]
    return record


def use_batch_records() -> bool:
    """Make aiokafka's fetcher yield the record batches' own records (idempotent); False,
    with a warning, when this aiokafka does not build records the way it was written for."""
    if _as_consumer_record is None:
        logger.warning("aiokafka's PartitionRecords has no %s: keeping ConsumerRecords", _BUILD)
        return False
    setattr(PartitionRecords, _BUILD, _batch_record)
    return True
