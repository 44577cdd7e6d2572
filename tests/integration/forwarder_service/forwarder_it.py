"""Helpers for the forwarder's integration tests, on top of the team harness (``tests.support``).

The broker, topics and the collector come from the harness; this module adds what only the
forwarder's tests need: keyed contract records, the group's committed offsets, and
``forwarder-service`` as a real process (so SIGTERM and SIGKILL are real) with its admin port.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from tracking_common.record import encode_record, partition_key, record_headers

from tests.support.services import ServiceProcess, free_port

T = TypeVar("T")

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
POISON = b'{"schema": "not a record"}'


def odd_record() -> bytes:
    """A record shaped like the contract with a list where a string belongs (once made the
    decoder raise TypeError instead of a contract error)."""
    document = orjson.loads(encode_record(payload(), source="internal"))
    document["data"]["source"] = []
    return orjson.dumps(document)


def payload(eid: str | None = None, *, user: str | None = None) -> dict[str, str]:
    """A valid tracker-protocol page view."""
    result = {
        "e": "pv",
        "eid": eid or str(uuid.uuid4()),
        "p": "web",
        "tv": "py-it",
        "aid": "it",
        "url": "https://example.com/page",
        "dtm": "1700000000000",
    }
    if user is not None:
        result["duid"] = user
    return result


async def produce_events(
    bootstrap: str,
    topic: str,
    count: int,
    *,
    poison_at: Sequence[int] = (),
    users: int = 50,
) -> list[str]:
    """Produce ``count`` contract records keyed by user, with a ``traceparent`` header
    (indexes in ``poison_at`` get a value that breaks the contract); return the valid eids.

    The harness's ``produce`` gives every record the same key and headers; these need their own.
    """
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    eids: list[str] = []
    try:
        pending = []
        for index in range(count):
            trace = ("traceparent", TRACEPARENT.encode())
            if index in poison_at:
                value, key, headers = POISON, f"poison-{index}".encode(), [trace]
            else:
                event = payload(user=str(index % users))
                eids.append(event["eid"])
                value, key = encode_record(event, source="internal"), partition_key(event)
                headers = [*record_headers(event["eid"]), trace]
            pending.append(await producer.send(topic, value, key=key, headers=headers))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return eids


async def committed(bootstrap: str, group: str) -> dict[int, int]:
    """The group's committed offsets, by partition."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return {tp.partition: meta.offset for tp, meta in offsets.items()}


async def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The end offset of each partition of ``topic``."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    tps = [TopicPartition(topic, p["partition"]) for p in described[0]["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
    await consumer.start()
    try:
        consumer.assign(tps)
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {tp.partition: offset for tp, offset in ends.items()}


async def all_committed(bootstrap: str, group: str, topic: str) -> bool:
    """True when ``group`` committed the end of every partition of ``topic``."""
    ends = await end_offsets(bootstrap, topic)
    return bool(ends) and await committed(bootstrap, group) == ends


async def wait_until(
    condition: Callable[[], Awaitable[T]],
    *,
    timeout_s: float,
    interval_s: float = 0.1,
    what: str = "condition",
) -> T:
    """Poll ``condition`` until it returns something truthy (returned), or time out."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(interval_s)


async def wait_for_all_committed(bootstrap: str, group: str, topic: str) -> None:
    """Wait (30 s at most) until ``group`` committed the end of every partition of ``topic``."""
    await wait_until(
        lambda: all_committed(bootstrap, group, topic),
        timeout_s=30,
        what="commit of every partition's end",
    )


def fast_env(
    bootstrap: str, *, topic: str, dlq: str, group: str, collector_url: str
) -> dict[str, str]:
    """Settings for a forwarder that reacts quickly in tests (override freely)."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "EVENTS_TOPIC": topic,
        "DLQ_TOPIC": dlq,
        "COLLECTOR_URL": collector_url,
        "FORWARDER_GROUP_ID": group,
        "FORWARDER_ADMIN_HOST": "127.0.0.1",
        "FORWARDER_ADMIN_PORT": str(free_port()),
        "FORWARDER_COMMIT_INTERVAL_S": "0.3",
        "FORWARDER_LAG_INTERVAL_S": "0.3",
        "FORWARDER_LINGER_MS": "10",
        "FORWARDER_BATCH_MAX_EVENTS": "50",
        "FORWARDER_RETRY_BASE_DELAY_S": "0.05",
        "FORWARDER_RETRY_MAX_DELAY_S": "0.3",
        "FORWARDER_SETUP_BACKOFF_S": "0.3",
        "FORWARDER_SESSION_TIMEOUT_MS": "6000",
        "FORWARDER_HEARTBEAT_INTERVAL_MS": "500",
        "FORWARDER_REBALANCE_TIMEOUT_MS": "10000",
        "FORWARDER_REVOKE_DRAIN_TIMEOUT_S": "3",
        "FORWARDER_SHUTDOWN_TIMEOUT_S": "15",
        "FORWARDER_DLQ_TIMEOUT_S": "10",
        "LOG_LEVEL": "INFO",
    }


class Forwarder:
    """``forwarder-service`` as a child process (the harness's ServiceProcess), and its admin."""

    def __init__(self, env: Mapping[str, str], log_path: Path, *, ready_path: str) -> None:
        self.admin_url = f"http://127.0.0.1:{env['FORWARDER_ADMIN_PORT']}"
        self.service = ServiceProcess(
            "forwarder-service", env, ready_url=self.admin_url + ready_path, log_path=log_path
        )

    async def start(self) -> None:
        """Start and wait until the ready path answers 200."""
        await asyncio.to_thread(self.service.start, 60.0)

    async def stop(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait for the exit code."""
        return await asyncio.to_thread(self.service.stop, timeout_s)

    def signal(self, signum: int) -> None:
        """Send ``signum`` if still running."""
        process = self.service.process
        if process is not None and process.poll() is None:
            process.send_signal(signum)

    async def wait_exit(self, timeout_s: float = 30.0) -> int:
        """Wait for the process to exit; return its exit code."""
        process = self.service.process
        assert process is not None
        return await asyncio.to_thread(process.wait, timeout_s)

    async def kill(self) -> None:
        """SIGKILL and reap (nothing if it never started)."""
        if self.service.process is not None:
            self.signal(signal.SIGKILL)
            await self.wait_exit(10)

    def log(self) -> str:
        """The end of its output."""
        return self.service.log()

    async def get(self, path: str) -> tuple[int, str]:
        """GET ``path`` on the admin port."""
        async with aiohttp.ClientSession() as session, session.get(self.admin_url + path) as r:
            return r.status, await r.text()

    async def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of metric ``name`` on ``/metrics`` carrying ``labels``."""
        _, text = await self.get("/metrics")
        wanted = [f'{key}="{value}"' for key, value in labels.items()]
        total = 0.0
        for line in text.splitlines():
            if not (line.startswith(name + " ") or line.startswith(name + "{")):
                continue
            if all(label in line for label in wanted):
                total += float(line.rsplit(" ", 1)[1])
        return total
