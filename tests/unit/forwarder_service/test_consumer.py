"""The consumer loop against a scripted Kafka consumer: commits, revokes, pauses, seeks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass
from typing import Any

import pytest
from forwarder_service.backpressure import BacklogBound, FlowGate
from forwarder_service.consumer import ForwarderConsumer, consumer_options
from forwarder_service.errors import DeadLetterWriteError
from forwarder_service.offsets import OffsetTracker
from forwarder_service.pipeline import Pipeline
from forwarder_service.settings import ForwarderSettings

from tests.support.forwarder_fakes import (
    TP0,
    TP1,
    FakeDeadLetters,
    FakeKafkaConsumer,
    FakeSink,
    InMemoryMetrics,
    records,
)


@dataclass
class Rig:
    consumer: ForwarderConsumer
    kafka: FakeKafkaConsumer
    pipeline: Pipeline
    sink: FakeSink
    dlq: FakeDeadLetters
    tracker: OffsetTracker[Hashable]
    gate: FlowGate
    metrics: InMemoryMetrics

    def consumer_lag(self) -> dict[tuple[str, int], int]:
        """The consumer lag gauge, by (topic, partition)."""
        return dict(self.metrics.metrics.gauges.lag)

    def run(self) -> asyncio.Task[None]:
        """Start the loop in the background."""
        return asyncio.create_task(self.consumer.run())

    async def run_until(self, condition: Callable[[], bool]) -> asyncio.Task[None]:
        """Start the loop and wait until ``condition()`` holds; return its task."""
        task = self.run()
        await until(condition)
        return task

    async def stop(self, task: asyncio.Task[None]) -> None:
        self.consumer.stop_fetching()
        await asyncio.wait_for(task, 5)


async def until(condition: Callable[[], bool], timeout_s: float = 5.0) -> None:
    """Yield to the loop until ``condition()`` holds (fail at the deadline)."""
    async with asyncio.timeout(timeout_s):
        while True:
            if condition():
                return
            await asyncio.sleep(0.001)


@pytest.fixture
def poll_timeout_ms() -> int:
    """The loop's poll timeout (overridden by tests that need a long one)."""
    return 1


@pytest.fixture
def commit_interval_s() -> float:
    """The least time between commits (overridden by tests of the coalescing)."""
    return 0.01


@pytest.fixture
def hold_before_pause_s() -> float:
    """How long a closed gate holds before it pauses (0: at once, for the pause tests)."""
    return 0.0


@pytest.fixture
async def rig(
    poll_timeout_ms: int, commit_interval_s: float, hold_before_pause_s: float
) -> AsyncIterator[Rig]:
    settings = ForwarderSettings(
        forwarder_commit_interval_s=commit_interval_s,
        forwarder_poll_timeout_ms=poll_timeout_ms,
        forwarder_revoke_drain_timeout_s=0.2,
        forwarder_lag_interval_s=0.01,
        forwarder_max_backlog_events=10,
    )
    metrics = InMemoryMetrics()
    tracker: OffsetTracker[Hashable] = OffsetTracker()
    dlq = FakeDeadLetters()
    pipeline = Pipeline(tracker=tracker, dead_letters=dlq, metrics=metrics.metrics)
    sink = FakeSink(listener=pipeline)
    pipeline.bind(sink)
    gate = FlowGate(BacklogBound(max_events=10, max_bytes=1 << 20))
    made: list[FakeKafkaConsumer] = []

    def factory(**options: Any) -> FakeKafkaConsumer:
        made.append(FakeKafkaConsumer(**options))
        return made[-1]

    consumer = ForwarderConsumer(
        settings=settings,
        pipeline=pipeline,
        gate=gate,
        metrics=metrics.metrics,
        consumer_factory=factory,
        hold_before_pause_s=hold_before_pause_s,
    )
    await pipeline.start()
    await consumer.start()
    kafka = made[0]
    await kafka.rebalance({TP0, TP1})
    yield Rig(consumer, kafka, pipeline, sink, dlq, tracker, gate, metrics)
    await pipeline.stop()
    await consumer.close()


def test_auto_commit_is_off_and_reading_starts_at_the_earliest_uncommitted() -> None:
    options = consumer_options(ForwarderSettings())
    assert options["enable_auto_commit"] is False
    assert options["auto_offset_reset"] == "earliest"


async def test_commits_only_the_settled_prefix(rig: Rig) -> None:
    # Three fetches: offsets are settled per fetched slice, [0], [1] and [2, 3].
    rig.kafka.queue.extend(
        [{TP0: records(TP0, [0])}, {TP0: records(TP0, [1])}, {TP0: records(TP0, [2, 3])}]
    )
    task = await rig.run_until(lambda: rig.tracker.outstanding() == 4)
    # Deliver 2 and 3 first: nothing may be committed past the pending 0 and 1.
    rig.sink.deliver_all(lambda tag: tag.record.offset >= 2)
    polls = rig.kafka.polls
    await until(lambda: rig.kafka.polls > polls + 5)
    assert all(TP0 not in commit for commit in rig.kafka.commits)
    rig.sink.deliver_all(lambda tag: tag.record.offset == 0)
    await until(lambda: TP0 in rig.kafka.committed_offsets)
    assert rig.kafka.committed_offsets[TP0] == 1
    rig.sink.deliver_all()
    await until(lambda: rig.kafka.committed_offsets[TP0] == 4)
    await rig.stop(task)


@pytest.mark.parametrize("commit_interval_s", [60.0])
async def test_the_first_advance_commits_at_once_and_later_ones_wait_for_the_interval(
    rig: Rig,
) -> None:
    task = rig.run()
    polls = rig.kafka.polls
    await until(lambda: rig.kafka.polls > polls + 5)  # idle: nothing to commit, no clock reset
    rig.kafka.queue.append({TP0: records(TP0, range(3))})
    await until(lambda: rig.tracker.outstanding() == 3)
    rig.sink.deliver_all()
    await until(lambda: rig.kafka.committed_offsets.get(TP0) == 3)  # not 60 s later

    rig.kafka.queue.append({TP0: records(TP0, range(3, 5))})
    await until(lambda: rig.tracker.outstanding() == 2)
    rig.sink.deliver_all()
    polls = rig.kafka.polls
    await until(lambda: rig.kafka.polls > polls + 5)
    assert len(rig.kafka.commits) == 1  # coalesced until the interval has passed
    await rig.stop(task)
    await rig.consumer.commit()  # as the shutdown sequence does
    assert rig.kafka.committed_offsets[TP0] == 5


async def test_revoke_drains_commits_then_fences_late_answers(rig: Rig) -> None:
    rig.pipeline.accept(TP0, records(TP0, [0]))
    rig.pipeline.accept(TP0, records(TP0, [1, 2]))
    rig.sink.deliver_all(lambda tag: tag.record.offset == 0)
    # Offset 1 stays in flight past the drain deadline; 2 is still buffered.
    await rig.kafka.rebalance({TP1})
    assert rig.kafka.commits[-1] == {TP0: 1}  # committed while still assigned
    assert TP0 not in rig.tracker.owned()
    assert rig.sink.buffered == []  # buffered events of the revoked partition are dropped
    # A late answer for the revoked partition changes nothing and commits nothing.
    before = list(rig.kafka.commits)
    rig.pipeline.delivered([])
    await rig.consumer.commit()
    assert rig.kafka.commits == before


async def test_a_late_answer_after_reassignment_cannot_commit_the_old_generation(
    rig: Rig,
) -> None:
    rig.pipeline.accept(TP0, records(TP0, range(2)))
    in_flight = rig.sink.take()
    await rig.kafka.rebalance({TP0, TP1})  # revoked and assigned again: a new generation
    rig.pipeline.delivered(in_flight)
    await rig.consumer.commit()
    assert all(TP0 not in commit for commit in rig.kafka.commits)


async def test_a_paused_gate_is_reapplied_after_a_rebalance(rig: Rig) -> None:
    rig.sink.setup_failing = True
    task = await rig.run_until(lambda: rig.kafka.paused() == {TP0, TP1})
    await rig.kafka.rebalance({TP0, TP1})  # aiokafka forgets pauses on assignment
    assert rig.kafka.paused() == {TP0, TP1}
    await rig.stop(task)


async def test_polling_goes_on_while_every_partition_is_paused(rig: Rig) -> None:
    rig.sink.setup_failing = True
    task = await rig.run_until(lambda: rig.kafka.polled_while_all_paused >= 20)
    assert not task.done()
    rig.sink.setup_failing = False
    await until(lambda: not rig.kafka.paused())
    await rig.stop(task)


async def test_a_backlog_over_the_bound_pauses_until_it_drains(rig: Rig) -> None:
    rig.kafka.queue.append({TP0: records(TP0, range(12))})
    task = await rig.run_until(lambda: rig.kafka.paused() == {TP0, TP1})
    rig.sink.deliver_all()
    await until(lambda: not rig.kafka.paused())
    await rig.stop(task)


@pytest.mark.parametrize("hold_before_pause_s", [60.0])
async def test_a_backlog_over_the_bound_stops_polling_without_pausing_until_it_drains(
    rig: Rig,
) -> None:
    # Holding keeps what aiokafka fetched (a pause would drop it, to be fetched again).
    rig.kafka.queue.append({TP0: records(TP0, range(12))})
    task = await rig.run_until(lambda: rig.gate.state.paused)
    polls = rig.kafka.polls
    await asyncio.sleep(0.05)
    assert rig.kafka.polls == polls
    assert rig.kafka.paused() == set()
    assert rig.kafka.seeks == []
    rig.sink.deliver_all()
    await until(lambda: rig.kafka.polls > polls)
    assert not rig.gate.state.paused
    await rig.stop(task)


@pytest.mark.parametrize("hold_before_pause_s", [0.05])
async def test_a_backlog_over_the_bound_for_longer_than_the_hold_pauses_and_polls(
    rig: Rig,
) -> None:
    rig.kafka.queue.append({TP0: records(TP0, range(12))})
    task = await rig.run_until(lambda: rig.kafka.polled_while_all_paused >= 5)
    assert rig.kafka.paused() == {TP0, TP1}
    rig.sink.deliver_all()
    await until(lambda: not rig.kafka.paused())
    await rig.stop(task)


@pytest.mark.parametrize("hold_before_pause_s", [0.05])
async def test_a_fetch_after_the_hold_is_not_taken_while_the_gate_is_closed(rig: Rig) -> None:
    rig.kafka.queue.append({TP0: records(TP0, range(12))})
    rig.kafka.queue.append({TP0: records(TP0, range(12, 17))})  # polled once the hold is over
    task = await rig.run_until(lambda: rig.kafka.polled_while_all_paused >= 1)
    assert rig.tracker.outstanding([TP0]) == 12  # the second fetch was not taken
    await rig.stop(task)


@pytest.mark.parametrize("hold_before_pause_s", [60.0])
async def test_a_setup_failure_pauses_at_once_whatever_the_hold(rig: Rig) -> None:
    rig.sink.setup_failing = True
    task = await rig.run_until(lambda: rig.kafka.polled_while_all_paused >= 5)
    assert rig.kafka.paused() == {TP0, TP1}
    await rig.stop(task)


async def test_records_the_sink_cannot_take_are_read_again(rig: Rig) -> None:
    rig.sink.capacity = 3
    rig.kafka.queue.append({TP0: records(TP0, range(5)), TP1: records(TP1, range(2))})
    task = await rig.run_until(lambda: len(rig.kafka.seeks) >= 2)
    await rig.stop(task)
    assert (TP0, 3) in rig.kafka.seeks  # the first record not taken
    assert (TP1, 0) in rig.kafka.seeks  # not touched after the sink filled up
    assert rig.tracker.outstanding([TP0]) == 3
    assert rig.tracker.outstanding([TP1]) == 0


async def test_a_dead_letter_failure_stops_the_loop_without_committing_past_it(
    rig: Rig,
) -> None:
    rig.dlq.broken = True
    rig.kafka.queue.append({TP0: records(TP0, range(3), poison=[1])})
    task = await rig.run_until(lambda: rig.tracker.outstanding() == 3)
    rig.sink.deliver_all()
    with pytest.raises(DeadLetterWriteError):
        await asyncio.wait_for(task, 5)
    await rig.consumer.commit()
    assert rig.kafka.committed_offsets.get(TP0, 0) <= 1


async def test_an_unexpected_dead_letter_writer_crash_is_fatal_too(rig: Rig) -> None:
    rig.dlq.crash = RuntimeError("bug")
    rig.pipeline.accept(TP0, records(TP0, [0], poison=[0]))
    assert not await rig.pipeline.drain(None, timeout_s=2)
    assert isinstance(rig.pipeline.failure, DeadLetterWriteError)
    assert rig.tracker.committable() == {}


async def test_stop_fetching_pauses_and_ends_the_loop(rig: Rig) -> None:
    task = await rig.run_until(lambda: rig.kafka.polls > 2)
    rig.consumer.stop_fetching()
    await asyncio.wait_for(task, 5)
    assert rig.kafka.paused() == {TP0, TP1}


@pytest.mark.parametrize("poll_timeout_ms", [10_000])
async def test_a_paused_loop_resumes_when_the_backlog_drains_not_at_the_next_poll_timeout(
    rig: Rig,
) -> None:
    # With a 10 s poll timeout, a loop that slept in the poll would miss the 5 s deadline.
    rig.kafka.queue.append({TP0: records(TP0, range(12))})
    task = await rig.run_until(lambda: rig.kafka.paused() == {TP0, TP1})
    rig.sink.deliver_all()
    await until(lambda: not rig.kafka.paused())
    rig.consumer.stop_fetching()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_lag_comes_from_the_brokers_end_offsets_while_paused(rig: Rig) -> None:
    # Paused partitions are not fetched, so the fetch's high-water mark stays where it was.
    rig.sink.setup_failing = True
    rig.kafka.committed_offsets = {TP0: 10, TP1: 0}
    rig.kafka.ends = {TP0: 5000, TP1: 70}
    task = await rig.run_until(
        lambda: rig.consumer_lag() == {("events", 0): 4990, ("events", 1): 70}
    )
    assert rig.kafka.paused() == {TP0, TP1}
    await rig.stop(task)


async def test_lag_falls_back_to_the_last_fetch_without_end_offsets(rig: Rig) -> None:
    rig.kafka.committed_offsets = {TP0: 40}
    task = await rig.run_until(lambda: rig.consumer_lag().get(("events", 0)) == 60)
    await rig.stop(task)


async def test_records_of_a_partition_revoked_meanwhile_are_dropped_without_a_seek(
    rig: Rig,
) -> None:
    gone = records(TP1, range(3))
    rig.kafka.assigned = {TP0}  # TP1 left between the fetch and the hand-off
    rig.kafka.queue.append({TP0: records(TP0, range(2)), TP1: gone})
    rig.tracker.revoke([TP1])
    task = await rig.run_until(lambda: rig.tracker.outstanding([TP0]) == 2)
    await rig.stop(task)
    assert all(tp != TP1 for tp, _ in rig.kafka.seeks)
