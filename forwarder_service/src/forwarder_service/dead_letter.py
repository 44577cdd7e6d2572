"""Dead letters: records the forwarder gives up on, written to ``DLQ_TOPIC`` before any commit.

A dead letter keeps the original key, value, timestamp and headers, and adds context headers.
Where Kafka Connect has a name for a fact its name is used, so existing tooling reads them:

=====================================  =========================================================
``__connect.errors.topic``             original topic
``__connect.errors.partition``         original partition (decimal)
``__connect.errors.offset``            original offset (decimal)
``__connect.errors.stage``             ``DESERIALIZE`` (contract) or ``HTTP_SEND`` (collector)
``__connect.errors.exception.class.name``  error class (e.g. ``RecordContractError``)
``__connect.errors.exception.message`` what went wrong (never the payload)
``x-forwarder.error.class``            :class:`ErrorClass` value: why it was dead-lettered
``x-forwarder.http.status``            last HTTP status (absent when there was no answer)
``x-forwarder.attempts``               send attempts made (0 for records never sent)
``x-forwarder.first_failure_ms``       first failure, ms since the epoch
``x-forwarder.last_failure_ms``        last failure, ms since the epoch
=====================================  =========================================================

Headers of an earlier dead-lettering (a replayed record that failed again) are replaced, not
repeated. :class:`KafkaDeadLetterSink` writes with an idempotent ``acks=all`` producer and a
deadline on every wait; if the topic does not acknowledge in time it raises
:class:`~forwarder_service.errors.DeadLetterWriteError` and reports itself unhealthy, and the
caller must stop consuming rather than skip the records.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from forwarder_service.errors import DeadLetterWriteError

__all__ = [
    "ERROR_HEADER_PREFIXES",
    "H_ATTEMPTS",
    "H_ERROR_CLASS",
    "H_EXCEPTION_CLASS",
    "H_FIRST_FAILURE_MS",
    "H_HTTP_STATUS",
    "H_LAST_FAILURE_MS",
    "H_MESSAGE",
    "H_OFFSET",
    "H_PARTITION",
    "H_REPLAYED_FROM",
    "H_STAGE",
    "H_TOPIC",
    "DeadLetter",
    "DeadLetterSink",
    "ErrorClass",
    "KafkaDeadLetterSink",
]

logger = logging.getLogger(__name__)

H_TOPIC: Final = "__connect.errors.topic"
H_PARTITION: Final = "__connect.errors.partition"
H_OFFSET: Final = "__connect.errors.offset"
H_STAGE: Final = "__connect.errors.stage"
H_EXCEPTION_CLASS: Final = "__connect.errors.exception.class.name"
H_MESSAGE: Final = "__connect.errors.exception.message"
H_ERROR_CLASS: Final = "x-forwarder.error.class"
H_HTTP_STATUS: Final = "x-forwarder.http.status"
H_ATTEMPTS: Final = "x-forwarder.attempts"
H_FIRST_FAILURE_MS: Final = "x-forwarder.first_failure_ms"
H_LAST_FAILURE_MS: Final = "x-forwarder.last_failure_ms"
H_REPLAYED_FROM: Final = "x-forwarder.replayed-from"

ERROR_HEADER_PREFIXES: Final = ("__connect.errors.", "x-forwarder.")
"""Headers added by dead-lettering or replay; dropped before adding fresh ones."""

_MAX_MESSAGE_CHARS: Final = 1000


class ErrorClass(StrEnum):
    """Why a record was dead-lettered (also the ``reason`` label of the metric)."""

    INVALID_RECORD = "invalid_record"
    NON_RETRYABLE_STATUS = "non_retryable_status"
    RETRIES_EXHAUSTED = "retries_exhausted"
    OVERSIZE = "oversize"


_STAGES: Final = {ErrorClass.INVALID_RECORD: "DESERIALIZE"}


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One record to dead-letter, with the facts the headers report."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]]
    timestamp_ms: int | None
    error_class: ErrorClass
    exception_class: str
    message: str
    status: int | None
    attempts: int
    first_failure_ms: int
    last_failure_ms: int

    def dlq_headers(self) -> list[tuple[str, bytes]]:
        """The original headers (earlier error headers removed) plus the context headers."""
        kept = [(k, v) for k, v in self.headers if not k.startswith(ERROR_HEADER_PREFIXES)]
        context = [
            (H_TOPIC, self.topic),
            (H_PARTITION, str(self.partition)),
            (H_OFFSET, str(self.offset)),
            (H_STAGE, _STAGES.get(self.error_class, "HTTP_SEND")),
            (H_EXCEPTION_CLASS, self.exception_class),
            (H_MESSAGE, self.message[:_MAX_MESSAGE_CHARS]),
            (H_ERROR_CLASS, self.error_class.value),
            (H_ATTEMPTS, str(self.attempts)),
            (H_FIRST_FAILURE_MS, str(self.first_failure_ms)),
            (H_LAST_FAILURE_MS, str(self.last_failure_ms)),
        ]
        if self.status is not None:
            context.append((H_HTTP_STATUS, str(self.status)))
        return kept + [(name, text.encode()) for name, text in context]


class DeadLetterSink(Protocol):
    """Where dead letters go. ``write`` returns only once every letter is durably stored."""

    @property
    def topic(self) -> str:
        """Where the letters are written (for errors and logs)."""
        ...

    @property
    def healthy(self) -> bool:
        """False once a write failed: the service must stop consuming."""
        ...

    async def write(self, letters: Sequence[DeadLetter]) -> None:
        """Store ``letters``; raise DeadLetterWriteError if that cannot be confirmed."""
        ...


class KafkaDeadLetterSink:
    """Writes dead letters to a Kafka topic with an idempotent ``acks=all`` producer.

    Every wait is bounded by ``timeout_s`` (the idempotent producer never expires a batch on
    its own, so an unbounded wait would hang while Kafka is down).
    """

    def __init__(
        self,
        *,
        bootstrap_servers: str,
        topic: str,
        timeout_s: float = 30.0,
        client_id: str = "tracking-forwarder-dlq",
        producer_options: dict[str, Any] | None = None,
    ) -> None:
        self._topic = topic
        self._timeout_s = timeout_s
        self._options: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "client_id": client_id,
            "enable_idempotence": True,  # implies acks="all"
            "acks": "all",
            "linger_ms": 5,
            "compression_type": "zstd",  # as the API writes (docs/decisions.md)
            "request_timeout_ms": max(1000, int(timeout_s * 1000)),
            **(producer_options or {}),
        }
        self._producer: AIOKafkaProducer | None = None
        self._healthy = False
        self._stopped = False

    @property
    def topic(self) -> str:
        """The dead-letter topic."""
        return self._topic

    @property
    def healthy(self) -> bool:
        """Started and no write has failed."""
        return self._healthy

    async def start(self) -> None:
        """Connect the producer (bounded by ``timeout_s``)."""
        if self._producer is not None:
            return
        producer = AIOKafkaProducer(**self._options)
        try:
            async with asyncio.timeout(self._timeout_s):
                await producer.start()
        except (KafkaError, TimeoutError, OSError) as exc:
            await self._close(producer)
            raise DeadLetterWriteError(
                f"cannot connect the dead-letter producer: {exc!r}", topic=self._topic, count=0
            ) from exc
        self._producer = producer
        self._healthy = True

    async def stop(self, timeout_s: float | None = None) -> None:
        """Flush and close (idempotent; gives up after ``timeout_s``, default the write
        deadline)."""
        if self._stopped:
            return
        self._stopped = True
        self._healthy = False
        if self._producer is not None:
            await self._close(self._producer, timeout_s)

    async def _close(self, producer: AIOKafkaProducer, timeout_s: float | None = None) -> None:
        try:
            async with asyncio.timeout(self._timeout_s if timeout_s is None else timeout_s):
                await producer.stop()
        except (KafkaError, TimeoutError, OSError) as exc:
            logger.warning("dead-letter producer did not close cleanly: %r", exc)

    async def write(self, letters: Sequence[DeadLetter]) -> None:
        """Produce ``letters`` and wait for every acknowledgement within ``timeout_s``."""
        if not letters:
            return
        producer = self._producer
        if producer is None or not self._healthy:
            raise DeadLetterWriteError(
                "dead-letter producer is not running", topic=self._topic, count=len(letters)
            )
        try:
            async with asyncio.timeout(self._timeout_s):
                pending = [
                    await producer.send(
                        self._topic,
                        value=letter.value,
                        key=letter.key,
                        headers=letter.dlq_headers(),
                        timestamp_ms=letter.timestamp_ms,
                    )
                    for letter in letters
                ]
                await asyncio.gather(*pending)
        except (KafkaError, TimeoutError, OSError, ValueError) as exc:
            self._healthy = False
            raise DeadLetterWriteError(
                f"dead-letter topic did not acknowledge {len(letters)} record(s): {exc!r}",
                topic=self._topic,
                count=len(letters),
            ) from exc
