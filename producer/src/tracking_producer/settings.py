"""The producer's settings that the API and ``tracking-produce`` share, with the API's names."""

from __future__ import annotations

from typing import Final, Literal

from pydantic import BaseModel, Field

__all__ = ["DEFAULT_COMPRESSION", "DEFAULT_LINGER_MS", "Compression", "PublisherSettings"]

Compression = Literal["zstd", "lz4", "snappy", "gzip", "none"]
DEFAULT_COMPRESSION: Final[Compression] = "zstd"
"""zstd (level 3, the broker's default): on the ingest records, 0.5-0.8 us of CPU a record and
8% of their size, where aiokafka's lz4 (level 9, which it does not let one change) costs
1.6-3.2 us and leaves 14-15%."""
DEFAULT_LINGER_MS: Final = 0
"""A batch goes as soon as Kafka's slot for its partition frees: on the quiet machine any linger
cost throughput and CPU (``docs/decisions.md``)."""


class PublisherSettings(BaseModel):
    """Deadline, buffer, linger and compression of the :class:`KafkaPublisher`."""

    api_produce_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=120,
        description="Deadline for Kafka to acknowledge a batch (the API answers 503 beyond).",
    )
    api_producer_buffer_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1024 * 1024,
        description="Bytes awaiting Kafka's acknowledgement; beyond it requests get 503.",
    )
    api_producer_linger_ms: int = Field(
        default=DEFAULT_LINGER_MS,
        ge=0,
        le=1000,
        description="Least age of a batch (unless full) when it is handed to Kafka.",
    )
    api_producer_compression: Compression = Field(
        default=DEFAULT_COMPRESSION,
        description="Compression of the record batches: zstd, lz4, snappy, gzip or none.",
    )
