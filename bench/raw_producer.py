"""Baseline ``raw_producer_events_per_s``: aiokafka alone producing the API's batch records.

The records the API builds for the benchmark's batch of page views, encoded once, produced as
fast as aiokafka can with the API publisher's producer settings (acks=all, idempotent, zstd,
the same linger and batch size), in two ways, each for the whole duration:

- ``send``: one ``producer.send()`` (and future) per record;
- ``batch``: per batch of records, one ``create_batch()`` per partition, ``send_batch``, one
  future per partition (what the API's publisher does).

Up to ``window`` batches are in flight at once, as with that many connections posting batches
to the API. Partitions are the default partitioner's (murmur2), chosen once. The benchmark's
figure is the faster of the two. Runs in a process of its own (``bench.bench_api`` starts it):

    python -m bench.raw_producer --bootstrap HOST:PORT --topic T --duration 10 --window 48
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import uvloop
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from tracking_common.iglu import bundled_repository
from tracking_common.iglu.resolver_config import build_resolver
from tracking_common.ingest import Ingestor
from tracking_common.messages import Message
from tracking_common.record import now_ms
from tracking_producer.settings import DEFAULT_COMPRESSION, DEFAULT_LINGER_MS

from bench.payloads import batch_events
from scripts.kafka.security import client_options_from_env

LINGER_MS = DEFAULT_LINGER_MS  # the API's (API_PRODUCER_LINGER_MS)
TRACEPARENT = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

Routed = list[tuple[Message, int]]
Produce = Callable[[AIOKafkaProducer, str, Routed], Awaitable[list["asyncio.Future[Any]"]]]


def producer_settings() -> dict[str, Any]:
    """The API publisher's producer settings (``tracking_producer.publisher``)."""
    return {
        "acks": "all",
        "enable_idempotence": True,
        "compression_type": DEFAULT_COMPRESSION,
        "linger_ms": LINGER_MS,
        "max_batch_size": 256 * 1024,
        "max_request_size": 4 * 1024 * 1024,
    }


async def api_records(topic: str) -> list[Message]:
    """The messages the API builds for the benchmark's batch payload."""
    events = batch_events()
    ingestor = Ingestor(
        iglu=bundled_repository(),
        resolver=build_resolver(None),
        events_topic=topic,
        bad_events_topic=topic + "_bad",
        allow_unknown_schemas=False,
        max_event_bytes=65_536,
        max_events_per_request=len(events),
        max_json_depth=32,
    )
    trace = [("traceparent", TRACEPARENT)]
    body = json.dumps({"events": events}).encode()
    batch = await ingestor.v1(body, now_ms=now_ms(), trace=trace, request_id="bench")
    if batch.rejections:
        raise SystemExit(f"the batch payload is invalid: {batch.rejections[0].as_dict()}")
    # aiokafka's record builder takes headers as a list only (the API converts each as it
    # appends it); converted here once, so the baseline pays nothing for it.
    return [Message(m.topic, m.value, m.key, list(m.headers), m.key_recurs) for m in batch.messages]


async def with_send(producer: AIOKafkaProducer, topic: str, routed: Routed) -> list[Any]:
    """One ``send`` per record; a future each."""
    return [
        await producer.send(topic, m.value, key=m.key, partition=p, headers=m.headers)
        for m, p in routed
    ]


async def with_batches(producer: AIOKafkaProducer, topic: str, routed: Routed) -> list[Any]:
    """One closed ``create_batch`` per partition, ``send_batch``; a future each."""
    batches: dict[int, Any] = {}
    for message, partition in routed:
        batch = batches.get(partition)
        if batch is None:
            batch = batches[partition] = producer.create_batch()
        # 100 page views never fill a 256 KiB batch.
        batch.append(timestamp=None, key=message.key, value=message.value, headers=message.headers)
    futures = []
    for partition, batch in batches.items():
        batch.close()
        futures.append(await producer.send_batch(batch, topic, partition=partition))
    return futures


async def run(
    bootstrap: str, topic: str, produce: Produce, duration_s: float, window: int
) -> tuple[int, float]:
    """Produce the API's records with ``produce`` for ``duration_s``: (acknowledged, seconds)."""
    messages = await api_records(topic)
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, **producer_settings(), **client_options_from_env()
    )
    await producer.start()
    partitions = sorted(await producer.partitions_for(topic))
    partitioner = DefaultPartitioner()
    routed = [(m, partitioner(m.key, partitions, partitions)) for m in messages]
    acknowledged = 0
    in_flight: deque[asyncio.Future[Any]] = deque()
    try:
        started = time.perf_counter()
        deadline = started + duration_s
        while time.perf_counter() < deadline:
            in_flight.append(asyncio.gather(*await produce(producer, topic, routed)))
            if len(in_flight) >= window:
                await in_flight.popleft()
                acknowledged += len(messages)
        while in_flight:
            await in_flight.popleft()
            acknowledged += len(messages)
        elapsed = time.perf_counter() - started
    finally:
        await producer.stop()
    return acknowledged, elapsed


WAYS: dict[str, Produce] = {"send": with_send, "batch": with_batches}


def main() -> None:
    """Measure both ways, one after the other; print ``{way: {events, elapsed_s}}`` as JSON."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--bootstrap", required=True)
    parser.add_argument("--topic", required=True)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per way")
    parser.add_argument("--window", type=int, default=48, help="batches in flight")
    args = parser.parse_args()
    results = {}
    for name, produce in WAYS.items():
        events, elapsed = uvloop.run(
            run(args.bootstrap, args.topic, produce, args.duration, args.window)
        )
        results[name] = {"events": events, "elapsed_s": elapsed}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
