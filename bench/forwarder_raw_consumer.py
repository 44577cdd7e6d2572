"""The ceiling for the forwarder benchmark: a bare aiokafka consumer reading a topic to its end.

Run as ``python -m bench.forwarder_raw_consumer BOOTSTRAP TOPIC N``; prints one JSON line with
the rate from the consumer's start (group join included, as the forwarder is timed from its
join) until N records were read, with the forwarder's consumer settings. It only counts the
records: no decoding, nothing sent.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

import orjson
from aiokafka import AIOKafkaConsumer

from scripts.kafka.security import client_options_from_env


async def consume(bootstrap: str, topic: str, total: int) -> dict[str, float]:
    """Read ``total`` records of ``topic`` with a fresh group; return the count and rate."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=f"bench-raw-{uuid.uuid4().hex[:8]}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        fetch_max_bytes=8 * 1024 * 1024,
        max_partition_fetch_bytes=1024 * 1024,
        **client_options_from_env(),
    )
    await consumer.start()
    started = time.monotonic()
    seen = 0
    try:
        while seen < total:
            batches = await consumer.getmany(timeout_ms=200, max_records=1000)
            for records in batches.values():
                seen += len(records)
        elapsed = time.monotonic() - started
    finally:
        await consumer.stop()
    return {"records": seen, "elapsed_s": elapsed, "events_per_s": seen / elapsed}


def main() -> None:
    """Entry point."""
    bootstrap, topic, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(orjson.dumps(asyncio.run(consume(bootstrap, topic, total))).decode())


if __name__ == "__main__":
    main()
