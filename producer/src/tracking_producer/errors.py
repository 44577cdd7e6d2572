"""The producer's errors.

Hierarchy::

    ProducerError                 the root: everything this package raises
    +-- PublishError              the publisher's: Kafka did not acknowledge; ``kind`` says why:
    |                             unavailable  not connected (nothing was handed over)
    |                             buffer_full  the bytes awaiting acknowledgement pass the budget
    |                             timeout      no acknowledgement within the deadline (may land)
    |                             error        Kafka refused the batch (aiokafka's error: cause)
    +-- InvalidEventError         permanent: events failed validation; nothing of the call was
    |                             produced; ``rejections`` name each event's index, path, code
    |                             (also a ``tracking_common.errors.InvalidEventError``)
    +-- ProducerClosedError       permanent: used before ``start()`` or after ``stop()``
    +-- KafkaRefusedError         permanent: Kafka refuses this client's credentials or TLS
    |                             setup; ``refusal`` names the setting
    +-- NotProducedError          retryable: valid events Kafka did not acknowledge; ``event_ids``
        |                         and ``events`` (with their ids) retry without duplicating
        +-- ProduceTimeoutError   Kafka unavailable or silent past the deadline (may still land)
        +-- SchemasUnavailableError  an Iglu registry failed: nothing was checked or produced

``retryable`` is a class attribute: True where the same call may succeed later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from tracking_common import errors as tracking_errors
from tracking_common.ingest import Rejection

__all__ = [
    "InvalidEventError",
    "KafkaRefusedError",
    "NotProducedError",
    "ProduceTimeoutError",
    "ProducerClosedError",
    "ProducerError",
    "PublishError",
    "SchemasUnavailableError",
]


class ProducerError(Exception):
    """Root of the producer's errors."""

    retryable: ClassVar[bool] = False


class PublishError(ProducerError):
    """Kafka did not acknowledge: ``kind`` is unavailable, timeout, buffer_full or error."""

    retryable = True

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class InvalidEventError(ProducerError, tracking_errors.InvalidEventError):
    """Events failed validation, as the API would have rejected them; nothing of the call was
    produced. ``rejections`` name each event's index in the call and every issue; ``issues``
    (the domain error's) lists them all together."""

    def __init__(self, rejections: Sequence[Rejection]) -> None:
        tracking_errors.InvalidEventError.__init__(
            self, (issue for rejection in rejections for issue in rejection.issues)
        )
        self.rejections = list(rejections)
        lines = [
            f"event {r.index}: {issue.path or '/'} {issue.code}: {issue.message}"
            for r in self.rejections[:10]
            for issue in r.issues
        ]
        more = len(self.rejections) - 10
        if more > 0:
            lines.append(f"... and {more} more invalid events")
        count = len(self.rejections)
        self.args = (f"{count} invalid event{'s' if count != 1 else ''}: " + "; ".join(lines),)


class ProducerClosedError(ProducerError, RuntimeError):
    """The producer is not started, or was stopped."""


class KafkaRefusedError(ProducerError):
    """A broker refuses this client (SASL credentials, certificates, protocol): retrying cannot
    help; ``refusal`` is the :class:`~tracking_common.kafka_security.KafkaSecurityError`."""

    def __init__(self, refusal: Exception) -> None:
        super().__init__(f"Kafka refuses this client: {refusal}")
        self.refusal = refusal


class NotProducedError(ProducerError):
    """Valid events Kafka did not acknowledge. Some may still land; retrying ``events`` (the
    same events, each with its ``event_id`` set) lets downstream deduplicate."""

    retryable = True

    def __init__(self, message: str, *, event_ids: Sequence[str], events: Sequence[Any]) -> None:
        super().__init__(message)
        self.event_ids = list(event_ids)
        self.events = list(events)


class ProduceTimeoutError(NotProducedError, TimeoutError):
    """Kafka was unreachable or did not acknowledge within the deadline."""


class SchemasUnavailableError(NotProducedError):
    """An Iglu registry failed or was too slow: the events were neither checked nor produced."""
