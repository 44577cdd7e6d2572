"""What becomes of events: results, failure reasons, request reports and the listener port.

Every event the emitter takes is settled exactly once: delivered (a 2xx answer), failed for
good (with a :class:`DeliveryFailure`), or abandoned when the emitter is closed before it could
be delivered. Outcomes reach the caller through any of: the ``on_success``/``on_failure``
callbacks, an :class:`EmitterListener`, or the future returned by ``add_awaitable`` /
``add_many``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from tracking_common.emitter.payload import PendingEvent

__all__ = [
    "BatchResult",
    "DeliveryFailure",
    "EmitterListener",
    "EventResult",
    "FailureReason",
    "OnFailure",
    "OnSuccess",
    "RequestReport",
    "ResultGroup",
]


class FailureReason(StrEnum):
    """Why the emitter gave up on an event."""

    NON_RETRYABLE_STATUS = "non_retryable_status"
    RETRIES_EXHAUSTED = "retries_exhausted"
    OVERSIZE = "oversize"
    ABANDONED = "abandoned"


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    """An account of a failed delivery: why, the last status or error, and when."""

    reason: FailureReason
    status: int | None
    message: str
    attempts: int
    first_failure_ms: int
    last_failure_ms: int

    @property
    def error_class(self) -> str:
        """``CollectorRejected`` when the collector answered, else ``CollectorUnreachable``."""
        return "CollectorRejected" if self.status is not None else "CollectorUnreachable"


@dataclass(frozen=True, slots=True)
class EventResult:
    """One event's fate: delivered, or ``failure`` says why not."""

    delivered: bool
    failure: DeliveryFailure | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """The fates of the events given to one ``add_many`` call."""

    delivered: tuple[PendingEvent, ...]
    failed: tuple[tuple[PendingEvent, DeliveryFailure], ...]

    @property
    def ok(self) -> bool:
        """Whether every event was delivered."""
        return not self.failed


class ResultGroup:
    """Collects the fates of a group of events and resolves one future when all are known."""

    __slots__ = ("delivered", "failed", "future", "remaining")

    def __init__(self, size: int, future: asyncio.Future[BatchResult]) -> None:
        self.remaining = size
        self.future = future
        self.delivered: list[PendingEvent] = []
        self.failed: list[tuple[PendingEvent, DeliveryFailure]] = []

    def settle(self, event: PendingEvent, failure: DeliveryFailure | None) -> None:
        """Record one event's fate."""
        if failure is None:
            self.delivered.append(event)
        else:
            self.failed.append((event, failure))
        self.remaining -= 1
        if self.remaining == 0 and not self.future.done():
            self.future.set_result(BatchResult(tuple(self.delivered), tuple(self.failed)))


@dataclass(frozen=True, slots=True)
class RequestReport:
    """One finished request, whatever its outcome (for metrics, spans and logs)."""

    events: Sequence[PendingEvent]
    status: int | None
    failure_class: str | None  # None on success; "4xx", "5xx", "timeout", "setup", ...
    start_ns: int
    end_ns: int
    attempt: int
    will_retry: bool
    body_bytes: int


OnSuccess = Callable[[Sequence[PendingEvent]], None]
"""``on_success(events)``: these events were delivered."""

OnFailure = Callable[[int, Sequence[PendingEvent], DeliveryFailure], None]
"""``on_failure(sent_count, failed_events, failure)``: ``failed_events`` failed for good;
``sent_count`` of the same batch were delivered (Snowplow's tracker callback, plus why)."""


class EmitterListener(Protocol):
    """Receives every event's fate. Called from the emitter's own tasks; must not block."""

    def delivered(self, events: Sequence[PendingEvent]) -> None:
        """These events were accepted by the collector."""
        ...

    def failed(self, events: Sequence[PendingEvent], failure: DeliveryFailure) -> None:
        """The emitter gave up on these events."""
        ...

    def request_finished(self, report: RequestReport) -> None:
        """A request ended (any outcome)."""
        ...

    def setup_failure(self, status: int | None, message: str) -> None:
        """A request hit a set-up failure; the emitter keeps retrying with a long backoff."""
        ...
