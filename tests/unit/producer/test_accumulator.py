"""The shared open batch per partition: coalescing, order, and what a failure reaches."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch
from tracking_common.messages import Message
from tracking_producer.accumulator import BatchAccumulator

TOPIC = "events"


def _message(n: int, size: int = 10) -> Message:
    return Message(TOPIC, str(n).encode().ljust(size, b"."), b"key", [])


class FakeKafka:
    """Takes closed batches one at a time, like aiokafka's one queued batch per partition."""

    def __init__(self, batch_size: int = 16_384) -> None:
        self.batch_size = batch_size
        self.sent: list[list[bytes]] = []
        self.answers: list[asyncio.Future[Any]] = []
        self.slot = asyncio.Event()
        self.slot.set()
        self.refuse: Exception | None = None

    def new_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_size, 0)

    async def send(self, batch: BatchBuilder, topic: str, partition: int) -> asyncio.Future[Any]:
        await self.slot.wait()
        if self.refuse is not None:
            raise self.refuse
        records = DefaultRecordBatch(bytes(batch._build()))  # reading back what was built
        self.sent.append([record.value for record in records])
        answer: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.answers.append(answer)
        return answer


async def test_requests_arriving_while_kafka_is_busy_share_the_next_batch() -> None:
    kafka = FakeKafka()
    batches = BatchAccumulator(kafka.new_batch, kafka.send)
    kafka.slot.clear()  # the partition's slot is taken: nothing goes out yet
    first = batches.append((TOPIC, 0), [_message(0)])
    await asyncio.sleep(0)  # the drain task takes the first batch and waits for the slot
    later = [batches.append((TOPIC, 0), [_message(n)]) for n in range(1, 6)]

    kafka.slot.set()
    await batches.drained()

    assert kafka.sent == [[b"0........."], [f"{n}.........".encode() for n in range(1, 6)]]
    assert len({future for futures in later for future in futures}) == 1  # one batch, one future
    for answer in kafka.answers:
        answer.set_result(None)
    await asyncio.wait([*first, *later[0]])
    assert all(future.result() is None for future in [*first, *later[0]])


async def _settled() -> None:
    """Let every task that can run, run (a few loop rounds; no time passes)."""
    for _ in range(10):
        await asyncio.sleep(0)


async def test_a_batch_lingers_to_gather_the_records_of_later_requests() -> None:
    kafka = FakeKafka()
    batches = BatchAccumulator(kafka.new_batch, kafka.send, linger_s=0.05)
    first = batches.append((TOPIC, 0), [_message(0)])
    await _settled()
    assert kafka.sent == []  # Kafka's slot is free, but the batch is younger than the linger
    later = batches.append((TOPIC, 0), [_message(1)])

    await batches.drained()

    assert kafka.sent == [[b"0.........", b"1........."]]
    assert later == first


async def test_a_full_batch_goes_at_once_whatever_the_linger() -> None:
    kafka = FakeKafka(batch_size=300)
    batches = BatchAccumulator(kafka.new_batch, kafka.send, linger_s=60.0)
    batches.append((TOPIC, 0), [_message(0)])
    await _settled()
    assert kafka.sent == []

    batches.append((TOPIC, 0), [_message(n, size=60) for n in range(1, 12)])  # fills it, and more
    await _settled()

    assert kafka.sent  # the full batch went at once
    assert kafka.sent[0][0] == b"0........."
    assert batches.pending_batches == 1  # the last one, not full, lingers
    await batches.close()


async def test_a_full_batch_is_sealed_and_the_records_keep_their_order() -> None:
    kafka = FakeKafka(batch_size=300)
    batches = BatchAccumulator(kafka.new_batch, kafka.send)
    messages = [_message(n, size=60) for n in range(20)]

    futures = batches.append((TOPIC, 1), messages)
    await batches.drained()

    assert len(futures) == len(kafka.sent) > 1
    values = [value for batch in kafka.sent for value in batch]
    assert values == [message.value for message in messages]


async def test_a_batch_kafka_refuses_fails_every_request_in_it() -> None:
    kafka = FakeKafka()
    batches = BatchAccumulator(kafka.new_batch, kafka.send)
    kafka.slot.clear()
    kafka.refuse = RuntimeError("no slot")
    refused = batches.append((TOPIC, 0), [_message(0)]) + batches.append((TOPIC, 0), [_message(1)])

    kafka.slot.set()
    await batches.drained()

    for future in refused:
        with pytest.raises(RuntimeError, match="no slot"):
            future.result()


async def test_an_answer_that_fails_reaches_its_requests() -> None:
    kafka = FakeKafka()
    batches = BatchAccumulator(kafka.new_batch, kafka.send)
    futures = batches.append((TOPIC, 0), [_message(0)])
    await batches.drained()

    kafka.answers[0].set_exception(ConnectionError("broker gone"))
    await asyncio.wait(futures)

    with pytest.raises(ConnectionError):
        futures[0].result()


async def test_close_cancels_what_was_not_handed_over() -> None:
    kafka = FakeKafka()
    batches = BatchAccumulator(kafka.new_batch, kafka.send)
    kafka.slot.clear()
    waiting = batches.append((TOPIC, 0), [_message(0)])
    await asyncio.sleep(0)
    queued = batches.append((TOPIC, 0), [_message(1)])

    await batches.close()

    assert all(future.cancelled() for future in [*waiting, *queued])
    assert batches.pending_batches == 0
