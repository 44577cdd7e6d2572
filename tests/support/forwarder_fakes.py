"""In-memory fakes of the forwarder's ports, for its tests.

:class:`FakeSink` buffers events until the test decides their fate; :class:`FakeDeadLetters`
stores letters and can be made to fail or to wait; :func:`records` builds consumer records and
:func:`record_batch` the record batch a fetch returns;
:class:`InMemoryMetrics` reads back what the instruments recorded.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from forwarder_service.dead_letter import DeadLetter
from forwarder_service.errors import DeadLetterWriteError
from forwarder_service.metrics import ForwarderMetrics
from forwarder_service.ports import RecordTag
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from tracking_common.emitter import DeliveryFailure, EmitterListener, FailureReason, PendingEvent
from tracking_common.emitter.payload import EncodedPayload
from tracking_common.record import encode_record

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


def record_batch(records: Sequence[FakeRecord], base_offset: int) -> bytes:
    """``records`` as one uncompressed v2 record batch at ``base_offset``, as a fetch returns it
    (their offsets ``base_offset`` onwards, in order: the builder writes a base offset of 0,
    which a broker sets when it appends; the batch's CRC does not cover it)."""
    builder = DefaultRecordBatchBuilder(
        magic=2,
        compression_type=0,
        is_transactional=False,
        producer_id=-1,
        producer_epoch=-1,
        base_sequence=-1,
        batch_size=1 << 30,
    )
    for relative, record in enumerate(records):
        builder.append(
            relative,
            timestamp=record.timestamp,
            key=record.key,
            value=record.value,
            headers=list(record.headers),
        )
    batch = bytearray(builder.build())
    batch[0:8] = base_offset.to_bytes(8, "big")
    return bytes(batch)


class FakePartitionState:
    """What aiokafka's ``FetchResult`` asks of a partition's state: a position, not paused."""

    paused = False

    def __init__(self, position: int = 0) -> None:
        self.position = position

    def consumed_to(self, position: int) -> None:
        self.position = position


class FakeAssignment:
    """An active assignment of one partition, whose state is ``state`` (for ``FetchResult``)."""

    active = True

    def __init__(self, state: FakePartitionState) -> None:
        self.state = state

    def state_value(self, _: TopicPartition) -> FakePartitionState:
        return self.state


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

    listener: EmitterListener
    capacity: int = 1_000_000
    setup_failing: bool = False
    buffered: list[tuple[EncodedPayload, RecordTag]] = field(default_factory=list)
    flushes: int = 0
    closed_with: float | None = None

    def add_encoded(self, payloads: Sequence[EncodedPayload], tags: Sequence[RecordTag]) -> int:
        room = max(0, self.capacity - len(self.buffered))
        self.buffered.extend(zip(payloads[:room], tags[:room], strict=True))
        return min(room, len(payloads))

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
        self.fail_all(FailureReason.ABANDONED)

    # -- test controls -----------------------------------------------------------------------

    def take(self, predicate: Callable[[RecordTag], bool] | None = None) -> list[PendingEvent]:
        chosen = [(p, t) for p, t in self.buffered if predicate is None or predicate(t)]
        ids = {id(t) for _, t in chosen}
        self.buffered = [(p, t) for p, t in self.buffered if id(t) not in ids]
        return [PendingEvent(payload[1:], len(payload), tag) for payload, tag in chosen]

    def deliver_all(self, predicate: Callable[[RecordTag], bool] | None = None) -> None:
        self.listener.delivered(self.take(predicate))

    def fail_all(
        self,
        reason: FailureReason,
        predicate: Callable[[RecordTag], bool] | None = None,
        *,
        status: int | None = 400,
    ) -> None:
        failure = DeliveryFailure(
            reason=reason,
            status=status,
            message=f"collector answered {status}",
            attempts=3,
            first_failure_ms=1000,
            last_failure_ms=2000,
        )
        self.listener.failed(self.take(predicate), failure)


@dataclass
class FakeDeadLetters:
    """A DeadLetterSink that stores letters; can be made to fail or to wait."""

    letters: list[DeadLetter] = field(default_factory=list)
    topic: str = "dlq"
    broken: bool = False
    crash: BaseException | None = None
    gate: asyncio.Event | None = None
    healthy: bool = True

    async def write(self, letters: Sequence[DeadLetter]) -> None:
        if self.gate is not None:
            await self.gate.wait()
        if self.crash is not None:
            raise self.crash
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


class FakeKafkaConsumer:
    """The parts of AIOKafkaConsumer the forwarder's consumer uses, scripted by the test.

    ``queue`` holds the answers of successive ``getmany`` calls; ``rebalance`` runs the
    listener's revoke and assign callbacks like aiokafka's background task, and, like aiokafka,
    forgets pauses on assignment. Positions move past returned records; ``seek`` moves them back.
    """

    def __init__(self, **options: object) -> None:
        self.options = options
        self.listener: object | None = None
        self.assigned: set[TopicPartition] = set()
        self.paused_tps: set[TopicPartition] = set()
        self.positions: dict[TopicPartition, int] = {}
        self.commits: list[dict[TopicPartition, int]] = []
        self.committed_offsets: dict[TopicPartition, int] = {}
        self.queue: list[dict[TopicPartition, list[FakeRecord]]] = []
        self.polls = 0
        self.polled_while_all_paused = 0
        self.seeks: list[tuple[TopicPartition, int]] = []
        self.started = False
        self.stopped = False
        self.commit_error: BaseException | None = None
        self.ends: dict[TopicPartition, int] = {}
        self.fetched_highwater = 100

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    def subscribe(self, topics: Sequence[str], *, listener: object) -> None:
        self.listener = listener

    def assignment(self) -> set[TopicPartition]:
        return set(self.assigned)

    def pause(self, *tps: TopicPartition) -> None:
        self.paused_tps.update(tps)

    def resume(self, *tps: TopicPartition) -> None:
        self.paused_tps.difference_update(tps)

    def paused(self) -> set[TopicPartition]:
        return set(self.paused_tps)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append((tp, offset))
        self.positions[tp] = offset

    def highwater(self, tp: TopicPartition) -> int | None:
        return self.fetched_highwater

    async def end_offsets(self, tps: Sequence[TopicPartition]) -> dict[TopicPartition, int]:
        return {tp: self.ends[tp] for tp in tps if tp in self.ends}

    async def committed(self, tp: TopicPartition) -> int | None:
        return self.committed_offsets.get(tp)

    async def commit(self, offsets: Mapping[TopicPartition, tuple[int, str]]) -> None:
        if self.commit_error is not None:
            raise self.commit_error
        for tp in offsets:
            if tp not in self.assigned:
                raise AssertionError(f"commit for {tp} which is not assigned")
        plain = {tp: offset for tp, (offset, _) in offsets.items()}
        self.commits.append(plain)
        self.committed_offsets.update(plain)

    async def getmany(
        self, *, timeout_ms: int, max_records: int | None = None
    ) -> dict[TopicPartition, list[FakeRecord]]:
        self.polls += 1
        if self.assigned and self.assigned <= self.paused_tps:
            self.polled_while_all_paused += 1
        await asyncio.sleep(0)
        if not self.queue:
            await asyncio.sleep(timeout_ms / 1000)
            return {}
        batches = self.queue.pop(0)
        result = {tp: recs for tp, recs in batches.items() if tp not in self.paused_tps}
        for tp, recs in result.items():
            self.positions[tp] = recs[-1].offset + 1
        return result

    async def rebalance(self, assigned: set[TopicPartition]) -> None:
        """Revoke everything, then assign ``assigned`` (eager protocol); pauses are forgotten."""
        listener: Any = self.listener
        await listener.on_partitions_revoked(set(self.assigned))
        self.assigned = set(assigned)
        self.paused_tps = set()
        await listener.on_partitions_assigned(set(assigned))
