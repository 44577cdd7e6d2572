"""The real Kafka broker for the test suite, and small helpers to use it.

``kafka_bootstrap`` is the session's broker: the one ``KAFKA_BOOTSTRAP_SERVERS`` names, else a
broker of its own (``scripts/kafka/broker.py``) on a free port, stopped when the session ends.
Tests create uniquely named topics and groups (:func:`unique_name`), so they never see each
other's data. ``private_broker`` is a broker a single test may stop and start.
``secure_kafka`` is a broker of the session with a ``SASL_SSL`` listener
(``scripts/kafka/security.py``); the helpers take its client ``options``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from scripts.kafka.broker import KafkaBroker, free_port
from scripts.kafka.security import SECURE_HOST, BrokerSecurity
from scripts.kafka.topics import broker_count, new_topic

__all__ = [
    "PrivateBroker",
    "SecureKafka",
    "consume_all",
    "create_topic",
    "produce",
    "unique_name",
]

Headers = Sequence[tuple[str, bytes]]


def unique_name(prefix: str) -> str:
    """A topic or group name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


Options = Mapping[str, Any]


async def create_topic(
    bootstrap: str, name: str, partitions: int = 1, *, options: Options | None = None
) -> str:
    """Create ``name`` and wait until it has a leader; return it.

    Replication as the project's scripts do it: 1 on a single broker, 3 with
    ``min.insync.replicas=2`` on a cluster.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **(options or {}))
    await admin.start()
    try:
        await admin.create_topics([new_topic(name, partitions, brokers=await broker_count(admin))])
    finally:
        await admin.close()
    await _wait_for_leaders(bootstrap, name, partitions, options or {})
    return name


async def _wait_for_leaders(bootstrap: str, topic: str, partitions: int, options: Options) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **options)
    await producer.start()
    try:
        async with asyncio.timeout(30):
            while True:
                found = await producer.partitions_for(topic)
                if found is not None and len(found) == partitions:
                    return
                await asyncio.sleep(0.05)
    finally:
        await producer.stop()


async def produce(
    bootstrap: str,
    topic: str,
    values: Sequence[bytes],
    *,
    key: bytes | None = None,
    headers: Headers | None = None,
    options: Options | None = None,
) -> None:
    """Produce ``values`` with acks=all and wait until the broker has every one."""
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", linger_ms=5, **(options or {})
    )
    await producer.start()
    try:
        futures = [
            await producer.send(topic, value, key=key, headers=list(headers or []))
            for value in values
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume_all(
    bootstrap: str,
    topic: str,
    expected: int,
    timeout_s: float = 20.0,
    *,
    options: Options | None = None,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``topic`` from the start until ``expected`` records arrived (or fail at the deadline).

    Waits a moment after the last expected record, so a test also sees records it did not
    expect (duplicates, strays).
    """
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        **(options or {}),
    )
    await consumer.start()
    received: list[ConsumerRecord[bytes, bytes]] = []
    try:
        async with asyncio.timeout(timeout_s):
            while len(received) < expected:
                batches = await consumer.getmany(timeout_ms=200)
                for records in batches.values():
                    received.extend(records)
        batches = await consumer.getmany(timeout_ms=300)
        for records in batches.values():
            received.extend(records)
    except TimeoutError:
        raise AssertionError(
            f"{topic}: {len(received)} of {expected} records within {timeout_s} s"
        ) from None
    finally:
        await consumer.stop()
    return received


def _external_bootstrap() -> str | None:
    value = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "").strip()
    return value or None


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The session's broker address (``host:port``)."""
    external = _external_bootstrap()
    if external is not None:
        yield external
        return
    broker = KafkaBroker(tmp_path_factory.mktemp("kafka"), f"127.0.0.1:{free_port()}")
    broker.start()
    try:
        yield broker.bootstrap
    finally:
        broker.stop()


class PrivateBroker:
    """A broker one test owns: it may stop it mid-run and start it again (data is kept)."""

    def __init__(self, workdir: Path) -> None:
        self._broker = KafkaBroker(workdir, f"127.0.0.1:{free_port()}")

    @property
    def bootstrap(self) -> str:
        """Its address."""
        return self._broker.bootstrap

    def start(self) -> None:
        """Start it (again) and wait until it answers."""
        self._broker.start()

    def stop(self) -> None:
        """Stop it cleanly."""
        self._broker.stop()

    def kill(self) -> None:
        """Stop it at once, as a crash would."""
        self._broker.stop(timeout_s=0)

    def pause(self) -> None:
        """Freeze it (SIGSTOP): connections stay open and nothing answers, as in a long stall."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused broker run again (SIGCONT)."""
        self._signal(signal.SIGCONT)

    def _signal(self, signum: int) -> None:
        pid = self._broker.pid()
        if pid is None:
            raise RuntimeError("the broker is not running")
        os.kill(pid, signum)


@pytest.fixture
def private_broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A started broker of the test's own, stopped at teardown."""
    broker = PrivateBroker(tmp_path / "kafka")
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass(frozen=True)
class SecureKafka:
    """A running broker whose only client listener is ``SASL_SSL``."""

    bootstrap: str
    security: BrokerSecurity
    user: str = "tracking"

    def env(self, **overrides: str) -> dict[str, str]:
        """``KAFKA_*`` variables a service connects with (as :attr:`user`), plus ``overrides``."""
        return {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            **self.security.client_environment(self.user),
            **overrides,
        }

    @property
    def options(self) -> dict[str, Any]:
        """aiokafka client options for the test's own clients (the broker's admin user)."""
        return self.security.admin_client_options()


@pytest.fixture(scope="session")
def secure_kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureKafka]:
    """The session's broker with a SASL_SSL listener at ``localhost`` (the only name in its
    certificate), next to the PLAINTEXT one the harness checks readiness on."""
    workdir = tmp_path_factory.mktemp("secure-kafka")
    security = BrokerSecurity.create(
        workdir / "security",
        hostnames=[SECURE_HOST],
        users={"tracking": uuid.uuid4().hex},
        client_auth="requested",
    )
    secure_port = free_port()
    broker = KafkaBroker(
        workdir / "kafka",
        f"127.0.0.1:{free_port()}",
        extra_properties=security.listener_properties(secure_port),
        format_args=security.format_args(),
    )
    broker.start(timeout_s=180)
    try:
        yield SecureKafka(f"{SECURE_HOST}:{secure_port}", security)
    finally:
        broker.stop()
