"""The producer library against aiokafka alone: ``producer_events_per_s`` beside
``raw_producer_events_per_s``, target >= 0.7x.

- ``producer_events_per_s``: :meth:`tracking_producer.EventProducer.send_many` with batches of
  ``BATCH`` page views (``bench.payloads.page_view``, as the API bench posts), ``--window``
  calls in flight at once; each call validates its events as the API does, builds the records
  and waits for Kafka's acknowledgement (acks=all).
- ``producer_raw_events_per_s``: ``bench.raw_producer`` (what ``bench_api`` records as
  ``raw_producer_events_per_s``), aiokafka producing the API's records (built once,
  beforehand) with the same producer settings, the faster of ``send`` and ``send_batch``.

Each runs in a process of its own, alternated (raw, library, raw, library, ...) on one
3-partition topic each, and the best round of each is kept, since the machine is shared. Then
the cost of each stage per event, without Kafka (``perf_counter_ns`` around each):

    uv run python -m bench.bench_producer [--duration 8] [--rounds 3] [--window 10]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import uvloop
from tracking_common.iglu import bundled_repository
from tracking_common.iglu.resolver_config import build_resolver
from tracking_common.ingest import Ingestor
from tracking_common.record import now_ms

from bench.bench_api import create_topics, end_offsets, kafka, raw_producer
from bench.child import run_child
from bench.payloads import page_view

BATCH = 500
TARGET = 0.7


def batch() -> list[dict[str, Any]]:
    """``BATCH`` page views with distinct ids (a call refuses duplicates)."""
    return [page_view(n, event_id=str(uuid.uuid4())) for n in range(BATCH)]


async def library(bootstrap: str, topic: str, duration_s: float, window: int) -> dict[str, float]:
    """``send_many`` of ``BATCH`` events, ``window`` calls in flight, for ``duration_s``."""
    from tracking_producer import EventProducer  # noqa: PLC0415 - the child process only
    from tracking_producer.cli_settings import load_produce_settings  # noqa: PLC0415

    events = batch()
    # KAFKA_SECURITY_* as tracking-produce reads them, so a secured broker works too.
    security = load_produce_settings()
    producer = EventProducer(bootstrap_servers=bootstrap, topic=topic, security=security)
    async with producer:
        await producer.send_many(events)  # connected, topic metadata known
        acknowledged = 0
        in_flight: deque[asyncio.Task[list[str]]] = deque()
        cpu, started = time.process_time(), time.perf_counter()
        deadline = started + duration_s
        while time.perf_counter() < deadline:
            in_flight.append(asyncio.create_task(producer.send_many(events)))
            if len(in_flight) >= window:
                acknowledged += len(await in_flight.popleft())
        while in_flight:
            acknowledged += len(await in_flight.popleft())
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
    return {"events": acknowledged, "elapsed_s": elapsed, "cpu_s": cpu}


def run_library(bootstrap: str, topic: str, duration_s: float, window: int) -> dict[str, float]:
    """:func:`library` in a process of its own."""
    result: dict[str, float] = run_child(
        "bench.bench_producer",
        *("--child", "--bootstrap", bootstrap, "--topic", topic),
        *("--duration", str(duration_s), "--window", str(window)),
        timeout_s=2 * duration_s + 120,
    )
    return result


@contextmanager
def children_cpu(totals: dict[str, float], name: str) -> Iterator[None]:
    """Add the CPU seconds of the child processes that end inside the block to ``totals``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    yield
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    totals[name] += after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


async def stages(rounds: int = 20) -> dict[str, float]:
    """Microseconds per event of each stage of a ``send_many`` call but the network, best of
    ``rounds``: the library's whole check (:meth:`EventProducer.check`: encoding the events,
    the API's ``Ingestor.v1``, the call's bookkeeping), and within it encoding the events and
    ``Ingestor.v1`` alone; then what the publisher does with the records: grouping them by
    partition (murmur2), appending them to aiokafka's batch builder, and building the batch
    (zstd)."""
    from aiokafka.producer.message_accumulator import BatchBuilder  # noqa: PLC0415
    from aiokafka.record.default_records import DefaultRecordBatch  # noqa: PLC0415
    from tracking_producer import EventProducer  # noqa: PLC0415
    from tracking_producer.partitioner import CachedPartitioner  # noqa: PLC0415

    ingestor = Ingestor(
        iglu=bundled_repository(),
        resolver=build_resolver(None),
        events_topic="bench",
        bad_events_topic="",
        allow_unknown_schemas=False,
        max_event_bytes=65_536,
        max_events_per_request=BATCH,
        max_json_depth=32,
    )
    producer = EventProducer(topic="bench")  # checks without Kafka (never started)
    partitioner = CachedPartitioner()
    names = ("check", "encode", "ingest", "partition", "append", "compress")
    best = dict.fromkeys(names, float("inf"))
    for _ in range(rounds):
        events = batch()
        t0 = time.perf_counter_ns()
        checked = await producer.check(events)
        t1 = time.perf_counter_ns()
        body = orjson.dumps({"events": events})
        t2 = time.perf_counter_ns()
        await ingestor.v1(body, now_ms=now_ms(), trace=[], request_id="bench", source="internal")
        t3 = time.perf_counter_ns()
        for message in checked.messages:
            assert message.key is not None  # noqa: S101 - every record is keyed
            partitioner.keyed(message.key, [0, 1, 2], recurs=message.key_recurs)
        t4 = time.perf_counter_ns()
        builder = BatchBuilder(BATCH * 1024, DefaultRecordBatch.CODEC_ZSTD)
        for message in checked.messages:
            headers = list(message.headers)  # as the accumulator hands them over
            builder.append(timestamp=None, key=message.key, value=message.value, headers=headers)
        t5 = time.perf_counter_ns()
        builder._build()  # what aiokafka's sender calls to compress a batch
        t6 = time.perf_counter_ns()
        times = (t0, t1, t2, t3, t4, t5, t6)
        for name, started, ended in zip(names, times[:-1], times[1:], strict=True):
            best[name] = min(best[name], (ended - started) / 1000 / BATCH)
    await producer.stop()
    await ingestor.close()
    return best


def main() -> None:
    """Alternate the raw producer and the library; record the figures and print the ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two")
    parser.add_argument("--window", type=int, default=10, help="send_many calls in flight")
    parser.add_argument("--raw-window", type=int, default=48, help="raw batches of 100 in flight")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--bootstrap", help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(
            json.dumps(uvloop.run(library(args.bootstrap, args.topic, args.duration, args.window)))
        )
        return

    from bench.results import ratio_line, record  # noqa: PLC0415

    run = uuid.uuid4().hex[:8]
    raw_rates: list[float] = []
    library_runs: list[dict[str, float]] = []
    cpu = {"raw": 0.0, "library": 0.0}  # CPU seconds of the child processes, whole runs
    with kafka() as bootstrap:
        topics = {kind: f"bench_producer_{kind}_{run}" for kind in ("raw", "library")}
        asyncio.run(create_topics(bootstrap, list(topics.values())))
        for round_ in range(args.rounds):
            print(f"  round {round_ + 1} of {args.rounds}", flush=True)
            with children_cpu(cpu, "raw"):
                rates = raw_producer(bootstrap, topics["raw"], args.duration, args.raw_window)
            raw_rates.append(max(rates.values()))
            with children_cpu(cpu, "library"):
                measured = run_library(bootstrap, topics["library"], args.duration, args.window)
            rate = measured["events"] / measured["elapsed_s"]
            print(f"  library send_many ({BATCH}): {rate:,.0f} events/s", flush=True)
            library_runs.append(measured)
        stored = {kind: asyncio.run(end_offsets(bootstrap, name)) for kind, name in topics.items()}
    acknowledged = sum(int(m["events"]) for m in library_runs)
    if stored["library"] < acknowledged:
        raise SystemExit(f"library: {acknowledged} acknowledged, {stored['library']} stored")
    best = max(library_runs, key=lambda m: m["events"] / m["elapsed_s"])
    costs = uvloop.run(stages())
    figures = {
        "producer_events_per_s": best["events"] / best["elapsed_s"],
        "producer_cpu_us_per_event": best["cpu_s"] / best["events"] * 1e6,
        # Beside bench_api's raw_producer_events_per_s, measured alternately with the library.
        "producer_raw_events_per_s": max(raw_rates),
        # Whole processes (start-up included) over every record each wrote: on a shared
        # machine, CPU per event moves less than events per second.
        "producer_process_cpu_us_per_event": cpu["library"] / stored["library"] * 1e6,
        "producer_raw_process_cpu_us_per_event": cpu["raw"] / stored["raw"] * 1e6,
        **{f"producer_stage_{name}_us_per_event": cost for name, cost in costs.items()},
    }
    record(figures)
    print(
        ratio_line(
            "producer library vs raw producer (events/s)",
            figures["producer_events_per_s"],
            figures["producer_raw_events_per_s"],
            TARGET,
        )
    )
    print(
        ratio_line(
            "raw vs library CPU per event (same ratio, if CPU-bound)",
            figures["producer_raw_process_cpu_us_per_event"],
            figures["producer_process_cpu_us_per_event"],
            None,
        )
    )


if __name__ == "__main__":
    main()
