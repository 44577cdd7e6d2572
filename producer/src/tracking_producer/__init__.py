"""Publishing tracking events to Kafka: batched per partition, idempotent (acks=all), lz4, with
a deadline on every await and a bounded buffer. The API publishes through it; so can any
internal service."""

from __future__ import annotations

from tracking_producer.errors import PublishError
from tracking_producer.partitioner import CachedPartitioner
from tracking_producer.publisher import KafkaPublisher, Publisher

__all__ = ["CachedPartitioner", "KafkaPublisher", "PublishError", "Publisher"]
