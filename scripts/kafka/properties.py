"""The ``server.properties`` of one KRaft node (broker and controller in one process).

Everything a node's config holds is decided here, in :func:`node_properties`: its listeners,
its place in the controller quorum, and the replication defaults that follow from the size of
the cluster. A further listener (for example SASL_SSL) is added through ``extra``: the three
listener keys are appended to, every other key is set.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = ["LISTENER_KEYS", "NodeAddress", "node_properties", "replication_for"]

# Keys whose values are comma-separated lists: ``extra`` adds to them instead of replacing.
LISTENER_KEYS: Final = ("listeners", "advertised.listeners", "listener.security.protocol.map")
# A cluster of this many nodes or more gets production-like durability.
FULL_REPLICATION: Final = 3
MIN_INSYNC_REPLICAS: Final = 2


def replication_for(nodes: int) -> tuple[int, int]:
    """(replication factor, ``min.insync.replicas``) for topics on a cluster of ``nodes``.

    Three nodes or more: 3 and 2, as in production, so one node may die without losing an
    acknowledged record or refusing writes. Fewer: 1 and 1 (a single development broker).
    """
    if nodes >= FULL_REPLICATION:
        return FULL_REPLICATION, MIN_INSYNC_REPLICAS
    return 1, 1


@dataclass(frozen=True, slots=True)
class NodeAddress:
    """Where one node listens: its client port and its controller (quorum) port."""

    node_id: int
    host: str
    port: int
    controller_port: int


def node_properties(
    node: NodeAddress,
    voters: list[NodeAddress],
    data_dir: Path,
    *,
    extra: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The properties of ``node`` in a quorum of ``voters`` (every node votes: combined mode)."""
    replicas, min_isr = replication_for(len(voters))
    properties = {
        "process.roles": "broker,controller",
        "node.id": str(node.node_id),
        "controller.quorum.voters": ",".join(
            f"{voter.node_id}@127.0.0.1:{voter.controller_port}" for voter in voters
        ),
        "listeners": (
            f"PLAINTEXT://{node.host}:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}"
        ),
        "advertised.listeners": f"PLAINTEXT://{node.host}:{node.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "default.replication.factor": str(replicas),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.num.partitions": "4",
        "offsets.topic.replication.factor": str(replicas),
        "transaction.state.log.replication.factor": str(replicas),
        "transaction.state.log.min.isr": str(min_isr),
        "share.coordinator.state.topic.replication.factor": str(replicas),
        "share.coordinator.state.topic.min.isr": str(min_isr),
        # Tests join groups constantly; the default 3 s delay would slow every one of them.
        "group.initial.rebalance.delay.ms": "0",
        # A killed node is fenced (its partitions get new leaders) after 6 s instead of 9 s;
        # shorter flaps on a loaded 2-core machine.
        "broker.session.timeout.ms": "6000",
        "broker.heartbeat.interval.ms": "1000",
        "num.network.threads": "2",
        "num.io.threads": "4",
        "num.replica.fetchers": "1",
        "background.threads": "2",
        "log.cleaner.dedupe.buffer.size": str(16 * 1024 * 1024),
        "auto.create.topics.enable": "true",
        "delete.topic.enable": "true",
    }
    for key, value in (extra or {}).items():
        if key in LISTENER_KEYS:
            properties[key] = f"{properties[key]},{value}"
        else:
            properties[key] = value
    return properties
