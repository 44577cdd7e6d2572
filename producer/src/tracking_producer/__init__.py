"""Tracking events straight to Kafka, as the API produces them.

:class:`EventProducer` checks events exactly as the API does and produces the contract records
(``source: "internal"``) through :class:`KafkaPublisher`, the API's own publisher: batched per
partition, idempotent (acks=all), zstd, with a deadline on every await and a bounded buffer.
``tracking-produce`` is its command line (:mod:`tracking_producer.cli`).
"""

from __future__ import annotations

from tracking_producer.checking import Checked
from tracking_producer.emitter import KafkaEmitter
from tracking_producer.errors import (
    InvalidEventError,
    KafkaRefusedError,
    NotProducedError,
    ProducerClosedError,
    ProducerError,
    ProduceTimeoutError,
    PublishError,
    SchemasUnavailableError,
)
from tracking_producer.partitioner import CachedPartitioner
from tracking_producer.producer import Event, EventProducer
from tracking_producer.publisher import KafkaPublisher, Publisher

__all__ = [
    "CachedPartitioner",
    "Checked",
    "Event",
    "EventProducer",
    "InvalidEventError",
    "KafkaEmitter",
    "KafkaPublisher",
    "KafkaRefusedError",
    "NotProducedError",
    "ProduceTimeoutError",
    "ProducerClosedError",
    "ProducerError",
    "PublishError",
    "Publisher",
    "SchemasUnavailableError",
]
