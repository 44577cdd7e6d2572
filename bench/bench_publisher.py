"""The produce stage alone: ``KafkaPublisher.publish`` of the API's batch records, concurrently.

``--callers`` coroutines each publish the first ``--records`` (100) of the records the API
builds for the benchmark's batch, again and again, as that many connections posting batches
(or, with ``--records 1``, single events) would. Two ways of handing over,
alternated in one run (the machine is shared: only figures of one run compare):

- ``batch``: the publisher as it is (records appended to one open batch per partition that
  concurrent callers share, ``send_batch`` once Kafka's slot for the partition frees);
- ``send``: the same publisher handing over with one ``send()`` and future per record.

Printed per way: events/s, and the process's CPU time per event (hand-over, the sender task,
acknowledgements) from ``time.process_time_ns``.

    uv run python -m bench.bench_publisher [--duration 5] [--rounds 2] [--callers 48]
        [--records 100]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

import uvloop
from tracking_common.messages import Message
from tracking_producer import KafkaPublisher

from bench.bench_api import PARTITIONS, create_topics, kafka
from bench.raw_producer import LINGER_MS, api_records


class PerRecordPublisher(KafkaPublisher):
    """The publisher handing over with ``send()``: a future per record (the alternative)."""

    async def publish(self, messages: Sequence[Message]) -> None:
        """One ``send()`` per message, then every future awaited."""
        producer = self._producer
        assert producer is not None  # noqa: S101 - measured only once connected
        futures: list[asyncio.Future[Any]] = []
        deadline = asyncio.get_running_loop().time() + self._timeout_s
        groups = await self._groups_after_metadata(producer, messages, deadline)
        for (topic, partition), group in groups.items():
            for m in group:
                future = await producer.send(
                    topic, m.value, key=m.key, partition=partition, headers=list(m.headers)
                )
                futures.append(future)
        await asyncio.gather(*futures)


async def measure(
    publisher: KafkaPublisher, messages: list[Message], callers: int, duration_s: float
) -> tuple[float, float]:
    """(events/s, CPU us per event) of ``callers`` publishing ``messages`` for ``duration_s``."""
    published = 0
    deadline = time.perf_counter() + duration_s

    async def caller() -> None:
        nonlocal published
        while time.perf_counter() < deadline:
            await publisher.publish(messages)
            published += len(messages)

    cpu, wall = time.process_time_ns(), time.perf_counter_ns()
    await asyncio.gather(*(caller() for _ in range(callers)))
    cpu, wall = time.process_time_ns() - cpu, time.perf_counter_ns() - wall
    return published / (wall / 1e9), cpu / 1e3 / published


async def run(
    bootstrap: str,
    duration_s: float,
    *,
    rounds: int,
    callers: int,
    only: str | None = None,
    records: int = 100,
) -> None:
    """Alternate the two ways (or ``only`` one) ``rounds`` times each; print their figures."""
    topic = f"bench_publisher_{uuid.uuid4().hex[:8]}"
    await create_topics(bootstrap, [topic])
    messages = (await api_records(topic))[:records]
    ways = {"batch": KafkaPublisher, "send": PerRecordPublisher}
    ways = {name: kind for name, kind in ways.items() if only in {None, name}}
    for round_ in range(rounds):
        for name, kind in ways.items():
            publisher = kind(bootstrap, timeout_s=30.0, buffer_bytes=256 << 20, linger_ms=LINGER_MS)
            await publisher.start()
            while not publisher.ready:  # noqa: ASYNC110 - the publisher's own task connects
                await asyncio.sleep(0.05)
            try:
                rate, cpu_us = await measure(publisher, messages, callers, duration_s)
            finally:
                await publisher.stop(timeout_s=10.0)
            print(
                f"  round {round_ + 1} {name:>5}: {rate:>9,.0f} events/s, "
                f"{cpu_us:5.1f} us CPU per event ({PARTITIONS} partitions, {callers} callers)",
                flush=True,
            )


def main() -> None:
    """Parse the options; run against ``KAFKA_BOOTSTRAP_SERVERS`` (or a broker of its own)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per way and round")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--callers", type=int, default=48)
    parser.add_argument("--records", type=int, default=100, help="records per publish (<= 100)")
    parser.add_argument("--only", choices=("batch", "send"), help="one way (to profile it)")
    args = parser.parse_args()
    with kafka() as bootstrap:
        uvloop.run(
            run(
                bootstrap,
                args.duration,
                rounds=args.rounds,
                callers=args.callers,
                only=args.only,
                records=args.records,
            )
        )


if __name__ == "__main__":
    main()
