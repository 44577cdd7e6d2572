"""A three-node Kafka cluster for the tests that need one, and what they ask of it.

``kafka_cluster`` is started once per session, on free ports in a temporary folder, the first
time a test asks for it (``scripts/kafka/cluster.py``), and stopped when the session ends.
``cluster`` hands it to one test whole: every node is running and every partition in sync
before the test, and nodes the test killed are started again afterwards. A test kills a node
by id with ``cluster.kill(node_id)`` (SIGKILL, or ``signum=signal.SIGTERM``) and brings it
back with ``cluster.restart(node_id)``. ``cluster_relays`` cuts one client (say, the API) off
every node while the others keep their connections.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from scripts.kafka.broker import free_port
from scripts.kafka.cluster import ClusterLayout, KafkaCluster
from scripts.kafka.properties import NodeAddress
from tests.support.relay import TcpRelay

__all__ = [
    "ClusterRelays",
    "cluster",
    "cluster_relays",
    "in_sync",
    "kafka_cluster",
    "leaders",
    "wait_in_sync",
]

CLUSTER_SIZE = 3


async def _describe(bootstrap: str, topics: list[str] | None) -> list[Any]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5000)
    await admin.start()
    try:
        described: list[Any] = await admin.describe_topics(topics)
    finally:
        await admin.close()
    return described


async def leaders(bootstrap: str, topic: str) -> dict[int, int]:
    """The leader (node id) of each partition of ``topic``; -1 while it has none."""
    described = await _describe(bootstrap, [topic])
    return {p["partition"]: p["leader"] for p in described[0]["partitions"]}


async def in_sync(bootstrap: str, topics: list[str] | None = None) -> bool:
    """True when every partition of ``topics`` (default: all) has all replicas in sync."""
    try:
        described = await _describe(bootstrap, topics)
    except (KafkaError, OSError):
        return False
    partitions = [p for topic in described if not topic["error_code"] for p in topic["partitions"]]
    return all(p["leader"] >= 0 and set(p["isr"]) == set(p["replicas"]) for p in partitions)


async def wait_in_sync(
    bootstrap: str, topics: list[str] | None = None, timeout_s: float = 60.0
) -> None:
    """Wait until :func:`in_sync`, or fail at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not await in_sync(bootstrap, topics):
        if time.monotonic() > deadline:
            raise AssertionError(f"partitions not in sync within {timeout_s} s")
        await asyncio.sleep(0.2)


def _heal(running: KafkaCluster) -> None:
    for node_id, node in running.nodes.items():
        if node.pid() is None:
            running.restart(node_id)
    asyncio.run(wait_in_sync(running.bootstrap))


class ClusterRelays:
    """A second listener on every node (``RELAYED``), reached only through a :class:`TcpRelay`:
    a client bootstrapped at :attr:`bootstrap` loses the cluster on :meth:`cut`, others not."""

    def __init__(self, node_ids: list[int]) -> None:
        self.relays = {node_id: TcpRelay(free_port(), free_port()) for node_id in node_ids}

    @property
    def bootstrap(self) -> str:
        """The relayed addresses of every node."""
        return ",".join(f"127.0.0.1:{relay.listen_port}" for relay in self.relays.values())

    def listener(self, node: NodeAddress) -> dict[str, str]:
        """The node's extra listener: bound on the relay's target, advertised as the relay."""
        relay = self.relays[node.node_id]
        return {
            "listeners": f"RELAYED://127.0.0.1:{relay.target_port}",
            "advertised.listeners": f"RELAYED://127.0.0.1:{relay.listen_port}",
            "listener.security.protocol.map": "RELAYED:PLAINTEXT",
        }

    def cut(self) -> None:
        """Cut every relay."""
        for relay in self.relays.values():
            relay.cut()

    def restore(self) -> None:
        """Relay again."""
        for relay in self.relays.values():
            relay.restore()


@pytest.fixture(scope="session")
def cluster_relays() -> Iterator[ClusterRelays]:
    """The relays in front of the session cluster's ``RELAYED`` listeners."""
    relays = ClusterRelays(list(range(1, CLUSTER_SIZE + 1)))
    for relay in relays.relays.values():
        relay.start()
    try:
        yield relays
    finally:
        for relay in relays.relays.values():
            relay.stop()


@pytest.fixture(scope="session")
def kafka_cluster(
    tmp_path_factory: pytest.TempPathFactory, cluster_relays: ClusterRelays
) -> Iterator[KafkaCluster]:
    """The session's three-node cluster (started on first use), with relayed listeners."""
    layout = ClusterLayout.new([free_port() for _ in range(CLUSTER_SIZE)])
    running = KafkaCluster(
        tmp_path_factory.mktemp("kafka-cluster"), layout, extra_properties=cluster_relays.listener
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def cluster(kafka_cluster: KafkaCluster, cluster_relays: ClusterRelays) -> Iterator[KafkaCluster]:
    """The session's cluster, whole and in sync; nodes the test stopped are restarted after,
    relays it cut are restored."""
    _heal(kafka_cluster)
    yield kafka_cluster
    cluster_relays.restore()
    _heal(kafka_cluster)
