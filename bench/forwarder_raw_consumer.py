"""The ceiling for the forwarder benchmark: a bare aiokafka consumer reading a topic to its end.

Run as ``python -m bench.forwarder_raw_consumer BOOTSTRAP TOPIC N``; prints one JSON line with
the rate and the CPU per record from the consumer's start (group join included, as the
forwarder is timed from its join) until N records were read. The consumer runs with the
forwarder's own options (``consumer_options`` of the ``FORWARDER_*`` variables in the
environment: fetch sizes, ``check_crcs``, isolation level, security) and polls as many records
as it does. It only counts the records: no decoding, nothing sent.
"""

from __future__ import annotations

import asyncio
import sys
import time
import uuid

import orjson
from aiokafka import AIOKafkaConsumer
from forwarder_service.consumer import consumer_options
from forwarder_service.settings import ForwarderSettings


async def consume(bootstrap: str, topic: str, total: int) -> dict[str, float]:
    """Read ``total`` records of ``topic`` with a fresh group; return the count and rate."""
    settings = ForwarderSettings(kafka_bootstrap_servers=bootstrap)
    options = {
        **consumer_options(settings),
        "group_id": f"bench-raw-{uuid.uuid4().hex[:8]}",
        "group_instance_id": None,
    }
    consumer = AIOKafkaConsumer(topic, **options)
    await consumer.start()
    started, cpu_started = time.monotonic(), time.process_time()
    seen = 0
    try:
        while seen < total:
            batches = await consumer.getmany(
                timeout_ms=settings.forwarder_poll_timeout_ms,
                max_records=settings.forwarder_max_poll_records,
            )
            for records in batches.values():
                seen += len(records)
        elapsed, cpu_s = time.monotonic() - started, time.process_time() - cpu_started
    finally:
        await consumer.stop()
    return {
        "records": seen,
        "elapsed_s": elapsed,
        "events_per_s": seen / elapsed,
        "cpu_us_per_record": cpu_s * 1e6 / seen,
    }


def main() -> None:
    """Entry point."""
    bootstrap, topic, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
    print(orjson.dumps(asyncio.run(consume(bootstrap, topic, total))).decode())


if __name__ == "__main__":
    main()
