"""The publisher's batches on the real broker: a request's records arrive whole, once, in order
per partition, on the partitions a Java client chooses; Kafka down or slow is a PublishError."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewPartitions
from tracking_common.messages import Message
from tracking_producer import KafkaPublisher, PublishError

from tests.support.kafka import PrivateBroker, consume_all, create_topic, unique_name
from tests.support.murmur2_vectors import JAVA_MURMUR2
from tests.support.waiting import wait_until

pytestmark = pytest.mark.kafka


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
async def topic(kafka_bootstrap: str) -> str:
    """A fresh topic of 2 partitions on the session's broker."""
    name = unique_name("publisher")
    await create_topic(kafka_bootstrap, name, 2)
    return name


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


async def test_partitions_added_to_a_topic_are_used_once_the_metadata_is_updated(
    publisher: KafkaPublisher, kafka_bootstrap: str
) -> None:
    topic = unique_name("publisher-grown")
    await create_topic(kafka_bootstrap, topic, 2)
    keys = list(JAVA_MURMUR2)
    await publisher.publish([Message(topic, b"before", key, []) for key in keys])
    admin = AIOKafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    await admin.start()
    try:
        await admin.create_partitions({topic: NewPartitions(total_count=6)})
    finally:
        await admin.close()
    producer = publisher._producer  # its producer, to refresh the metadata
    assert producer is not None
    async with asyncio.timeout(20):  # the refresh aiokafka makes when its metadata expires
        while len(producer.client.cluster.partitions_for_topic(topic) or ()) < 6:
            await producer.client.force_metadata_update()

    await publisher.publish([Message(topic, b"after", key, []) for key in keys])

    records = await consume_all(kafka_bootstrap, topic, 2 * len(keys))
    for record in records:
        assert record.key is not None
        count = 2 if record.value == b"before" else 6
        assert record.partition == java_partition(record.key, count), record.value


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


async def test_the_publisher_refuses_past_its_byte_budget_and_before_connecting(
    kafka_bootstrap: str, topic: str
) -> None:
    publisher = KafkaPublisher(kafka_bootstrap, timeout_s=5.0, buffer_bytes=1000, linger_ms=5)
    small = Message(topic, b"x" * 500, b"k", [])
    large = Message(topic, b"x" * 2000, b"k", [])
    with pytest.raises(PublishError) as before:
        await publisher.publish([small])
    await publisher.start()
    try:
        await wait_until(lambda: publisher.ready, 30, "the publisher never got ready")
        with pytest.raises(PublishError) as full:
            await publisher.publish([large])
        await publisher.publish([small])
        assert publisher.buffered_bytes == 0
    finally:
        await publisher.stop(timeout_s=5.0)
        await publisher.stop(timeout_s=5.0)  # idempotent

    assert before.value.kind == "unavailable"
    assert full.value.kind == "buffer_full"
    [record] = await consume_all(kafka_bootstrap, topic, 1)
    assert record.value == small.value


async def test_concurrent_requests_reach_the_partition_whole_and_in_arrival_order(
    kafka_bootstrap: str, topic: str
) -> None:
    # Each request is more than one producer batch (256 KiB) for one key, so handing it over
    # waits for the sender mid-request; the others must not slip in between (one user's
    # events keep the order their requests arrived in).
    requests, per_request = 8, 150
    publisher = KafkaPublisher(kafka_bootstrap, timeout_s=20.0, buffer_bytes=64 << 20, linger_ms=5)
    await publisher.start()
    try:
        await wait_until(lambda: publisher.ready, 30, "the publisher never got ready")
        batches = [
            [
                Message(topic, f"{n:02d}-{i:03d}-".encode() + b"x" * 2000, b"user", [])
                for i in range(per_request)
            ]
            for n in range(requests)
        ]
        await asyncio.gather(*(publisher.publish(batch) for batch in batches))
    finally:
        await publisher.stop(timeout_s=5.0)

    records = await consume_all(kafka_bootstrap, topic, requests * per_request, timeout_s=60)
    in_partition = [r.value[:2] for r in sorted(records, key=lambda r: r.offset)]
    runs = [
        tag
        for index, tag in enumerate(in_partition)
        if index == 0 or tag != in_partition[index - 1]
    ]
    assert runs == [f"{n:02d}".encode() for n in range(requests)]


async def test_records_published_while_batches_are_drained_arrive_once_each_in_order(
    kafka_bootstrap: str, topic: str
) -> None:
    # Many callers publishing one record at a time share lingering batches, which the drain
    # hands over while others are in flight: every record lands once, each caller's in order,
    # and the broker refuses any idempotent sequence number out of place.
    callers, each = 48, 40
    publisher = await started(kafka_bootstrap)
    try:

        async def publish_in_turn(caller: int) -> None:
            for i in range(each):
                value = f"{caller:02d}-{i:03d}".encode()
                await publisher.publish([Message(topic, value, b"user", [])])

        await asyncio.gather(*(publish_in_turn(caller) for caller in range(callers)))
    finally:
        await publisher.stop(timeout_s=5.0)

    records = await consume_all(kafka_bootstrap, topic, callers * each, timeout_s=60)
    values = [r.value for r in sorted(records, key=lambda r: r.offset)]
    assert len(values) == len(set(values)) == callers * each
    for caller in range(callers):
        mine = [value for value in values if value.startswith(f"{caller:02d}-".encode())]
        assert mine == [f"{caller:02d}-{i:03d}".encode() for i in range(each)]
