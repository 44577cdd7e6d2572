"""In-memory fakes of the forwarder's ports, for tests (as httpx ships a mock transport).

:class:`FakeSink` buffers events until the test decides their fate; :class:`FakeDeadLetters`
stores letters and can be made to fail or to wait; :func:`records` builds consumer records;
:class:`InMemoryMetrics` reads back what the instruments recorded.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from aiokafka import TopicPartition
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from tracking_common.record import encode_record

from forwarder_service.dead_letter import DeadLetter
from forwarder_service.errors import DeadLetterWriteError
from forwarder_service.metrics import ForwarderMetrics
from forwarder_service.ports import (
    DeliveryListener,
    FailureKind,
    RecordTag,
    SendFailure,
    SinkFullError,
)

TOPIC = "events"
TP0 = TopicPartition(TOPIC, 0)
TP1 = TopicPartition(TOPIC, 1)


@dataclass(frozen=True, slots=True)
class FakeRecord:
    """Shaped like aiokafka's ConsumerRecord."""

    topic: str
    partition: int
    offset: int
    timestamp: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()


def event_payload(eid: str | None = None) -> dict[str, str]:
    """A valid tracker-protocol page view."""
    return {
        "e": "pv",
        "eid": eid or str(uuid.uuid4()),
        "p": "web",
        "tv": "py-test",
        "url": "https://example.com/",
        "aid": "app",
    }


def records(
    tp: TopicPartition, offsets: Sequence[int], *, poison: Sequence[int] = ()
) -> list[FakeRecord]:
    """Records at ``offsets``; those in ``poison`` have values that break the contract."""
    result = []
    for offset in offsets:
        value = b"not json" if offset in poison else encode_record(event_payload(), source="v1")
        result.append(
            FakeRecord(
                topic=tp.topic,
                partition=tp.partition,
                offset=offset,
                timestamp=1_700_000_000_000 + offset,
                key=f"key-{offset}".encode(),
                value=value,
                headers=(("event-id", b"x"),),
            )
        )
    return result


@dataclass
class FakeSink:
    """An EventSink that buffers events until the test says what happens to them."""

    listener: DeliveryListener
    capacity: int = 1_000_000
    setup_failing: bool = False
    buffered: list[tuple[Mapping[str, str], RecordTag]] = field(default_factory=list)
    flushes: int = 0
    closed_with: float | None = None

    def submit(self, payload: Mapping[str, str], *, tag: RecordTag) -> None:
        if len(self.buffered) >= self.capacity:
            raise SinkFullError("full")
        self.buffered.append((payload, tag))

    def backlog(self) -> tuple[int, int]:
        return len(self.buffered), 100 * len(self.buffered)

    def discard(self, predicate: Callable[[RecordTag], bool]) -> int:
        before = len(self.buffered)
        self.buffered = [(p, t) for p, t in self.buffered if not predicate(t)]
        return before - len(self.buffered)

    async def flush(self) -> None:
        self.flushes += 1

    async def start(self) -> None:
        return None

    async def close(self, timeout_s: float) -> None:
        self.closed_with = timeout_s
        self.fail_all(FailureKind.ABANDONED)

    # -- test controls -----------------------------------------------------------------------

    def take(self, predicate: Callable[[RecordTag], bool] | None = None) -> list[RecordTag]:
        chosen = [t for _, t in self.buffered if predicate is None or predicate(t)]
        ids = {id(t) for t in chosen}
        self.buffered = [(p, t) for p, t in self.buffered if id(t) not in ids]
        return chosen

    def deliver_all(self, predicate: Callable[[RecordTag], bool] | None = None) -> None:
        self.listener.delivered(self.take(predicate))

    def fail_all(
        self,
        kind: FailureKind,
        predicate: Callable[[RecordTag], bool] | None = None,
        *,
        status: int | None = 400,
    ) -> None:
        self.listener.failed(
            [
                SendFailure(
                    tag=tag,
                    kind=kind,
                    status=status,
                    error_class="NonRetryableStatus",
                    message=f"collector answered {status}",
                    attempts=3,
                    first_failure_ms=1000,
                    last_failure_ms=2000,
                )
                for tag in self.take(predicate)
            ]
        )


@dataclass
class FakeDeadLetters:
    """A DeadLetterSink that stores letters; can be made to fail or to wait."""

    letters: list[DeadLetter] = field(default_factory=list)
    broken: bool = False
    gate: asyncio.Event | None = None
    healthy: bool = True

    async def write(self, letters: Sequence[DeadLetter]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.broken:
            self.healthy = False
            raise DeadLetterWriteError("broken", topic="dlq", count=len(letters))
        self.letters.extend(letters)


Labels = tuple[tuple[str, str], ...]


class InMemoryMetrics:
    """Forwarder metrics on a private meter provider whose values tests can read back."""

    def __init__(self) -> None:
        self.reader = InMemoryMetricReader()
        self.provider = MeterProvider(metric_readers=[self.reader])
        self.metrics = ForwarderMetrics(self.provider.get_meter("test"))

    def points(self, name: str) -> dict[Labels, float]:
        """Current points of ``name``: sorted label pairs -> value (histograms: count)."""
        data = self.reader.get_metrics_data()
        points: dict[Labels, float] = {}
        if data is None:
            return points
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    if metric.name != name:
                        continue
                    for point in metric.data.data_points:
                        attributes = point.attributes or {}
                        key = tuple(sorted((k, str(v)) for k, v in attributes.items()))
                        value: float = getattr(point, "value", None) or 0.0
                        points[key] = float(value or getattr(point, "count", 0))
        return points
