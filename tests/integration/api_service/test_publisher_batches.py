"""The publisher's batches on the real broker: a request's records arrive whole, once, in order
per partition, on the partitions a Java client chooses; Kafka down or slow is a PublishError."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from api_service.publisher import KafkaPublisher, PublishError
from tracking_common.messages import Message

from tests.integration.api_service.api_it import wait_until
from tests.support.kafka import PrivateBroker, consume_all, create_topic, unique_name

pytestmark = pytest.mark.kafka

# Kafka's own murmur2 test vectors (clients' UtilsTest.testMurmur2): key -> Java's signed hash.
# A Java producer puts a key on partition (hash & 0x7fffffff) % partitions.
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}


def java_partition(key: bytes, partitions: int) -> int:
    """The partition Java's default partitioner picks for ``key``."""
    return (JAVA_MURMUR2[key] & 0x7FFFFFFF) % partitions


async def started(bootstrap: str, timeout_s: float = 20.0) -> KafkaPublisher:
    """A publisher on ``bootstrap``, connected."""
    publisher = KafkaPublisher(bootstrap, timeout_s=timeout_s, buffer_bytes=64 << 20, linger_ms=5)
    await publisher.start()
    await wait_until(lambda: publisher.ready, 30, "the publisher never got ready")
    return publisher


@pytest.fixture
async def publisher(kafka_bootstrap: str) -> AsyncIterator[KafkaPublisher]:
    """A connected publisher on the session's broker."""
    publisher = await started(kafka_bootstrap)
    yield publisher
    await publisher.stop(timeout_s=5.0)


async def test_a_requests_records_arrive_whole_once_in_order_on_javas_partitions(
    publisher: KafkaPublisher, kafka_bootstrap: str
) -> None:
    partitions = 4
    topic = unique_name("publisher-batches")
    await create_topic(kafka_bootstrap, topic, partitions)
    keys = list(JAVA_MURMUR2)
    # 4 KB each, 1.2 MB in all: more than one 256 KiB batch for some partitions.
    messages = [
        Message(topic, f"{i:04d}-".encode() + b"x" * 4000, keys[i % len(keys)], [("n", b"%d" % i)])
        for i in range(300)
    ]

    await publisher.publish(messages)

    records = await consume_all(kafka_bootstrap, topic, len(messages))
    assert sorted(r.value for r in records) == sorted(m.value for m in messages)  # whole, once
    for record in records:
        assert record.key is not None
        assert record.partition == java_partition(record.key, partitions)
    for partition in range(partitions):
        mine = sorted((r for r in records if r.partition == partition), key=lambda r: r.offset)
        indices = [int(r.value[:4]) for r in mine]
        assert indices == sorted(indices)
        assert [dict(r.headers)["n"] for r in mine] == [b"%d" % i for i in indices]
    assert publisher.buffered_bytes == 0


async def test_a_topic_created_after_connecting_is_waited_for(
    publisher: KafkaPublisher, kafka_bootstrap: str
) -> None:
    topic = unique_name("publisher-late-topic")
    await create_topic(kafka_bootstrap, topic, 3)
    messages = [Message(topic, b"%d" % i, None if i % 2 else b"k", []) for i in range(10)]

    await publisher.publish(messages)

    records = await consume_all(kafka_bootstrap, topic, len(messages))
    assert sorted(r.value for r in records) == sorted(m.value for m in messages)


@pytest.mark.slow
async def test_kafka_stalled_or_down_is_a_publish_error_within_the_deadline(
    private_broker: PrivateBroker,
) -> None:
    deadline_s = 2.0
    topic = unique_name("publisher-outage")
    await create_topic(private_broker.bootstrap, topic, 2)
    publisher = await started(private_broker.bootstrap, timeout_s=deadline_s)
    try:
        private_broker.pause()
        try:
            stalled = await refused_within(publisher, Message(topic, b"late", b"k", []), deadline_s)
            # Kafka may still take the bytes: they count against the budget until it answers.
            assert publisher.buffered_bytes == len(b"late") + len(b"k")
        finally:
            private_broker.resume()
        await wait_until(lambda: publisher.buffered_bytes == 0, 30, "the budget never freed")

        await asyncio.to_thread(private_broker.stop)
        down = await refused_within(publisher, Message(topic, b"down", b"k", []), deadline_s)
    finally:
        await publisher.stop(timeout_s=1.0)

    assert stalled.kind == "timeout"
    assert down.kind in {"timeout", "unavailable"}


async def refused_within(
    publisher: KafkaPublisher, message: Message, deadline_s: float
) -> PublishError:
    """The PublishError ``publish([message])`` raises, which must come within the deadline."""
    began = time.monotonic()
    with pytest.raises(PublishError) as refused:
        await publisher.publish([message])
    assert time.monotonic() - began < deadline_s + 1.0
    return refused.value
