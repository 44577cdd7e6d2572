"""A KRaft cluster of several nodes on loopback, each a :class:`KafkaBroker` of its own.

Every node is broker and controller (combined mode) and votes in the quorum; each has its own
client port, controller port and folder (``<workdir>/node-<id>``: data, config, log, pid file).
The layout (cluster id and ports) is written once to ``<workdir>/cluster.json`` and reused, so
a node restarted after a crash (SIGKILL) comes back on the same ports and recovers its log.

Nodes of a quorum only answer once a majority runs, so :meth:`KafkaCluster.start` launches all
of them before it waits for any.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import uuid
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from scripts.kafka.broker import START_TIMEOUT_S, KafkaBroker, free_port
from scripts.kafka.properties import NodeAddress

__all__ = ["CLUSTER_HEAP", "ClusterLayout", "KafkaCluster"]

# Three of these plus the services and the tests fit a 2-core, 24 GB machine with room to
# spare; a node of a small test cluster never needs more.
CLUSTER_HEAP: Final = os.environ.get("KAFKA_HEAP", "320m")

ExtraProperties = Callable[[NodeAddress], Mapping[str, str]]


@dataclass(frozen=True, slots=True)
class ClusterLayout:
    """The cluster id and every node's address: fixed at the first start, kept on disk."""

    cluster_id: str
    nodes: tuple[NodeAddress, ...]

    @classmethod
    def new(cls, ports: list[int]) -> ClusterLayout:
        """A fresh layout with these client ports (node ids 1..n) and free controller ports."""
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        nodes = tuple(
            NodeAddress(index + 1, "127.0.0.1", port, free_port())
            for index, port in enumerate(ports)
        )
        return cls(cluster_id, nodes)

    def dump(self) -> str:
        """As JSON."""
        return json.dumps(
            {
                "cluster_id": self.cluster_id,
                "nodes": [
                    [node.node_id, node.host, node.port, node.controller_port]
                    for node in self.nodes
                ],
            }
        )

    @classmethod
    def load(cls, text: str) -> ClusterLayout:
        """From :meth:`dump`'s JSON."""
        document = json.loads(text)
        nodes = tuple(NodeAddress(*node) for node in document["nodes"])
        return cls(document["cluster_id"], nodes)


class KafkaCluster:
    """Several nodes started, stopped, killed and restarted by node id."""

    def __init__(
        self,
        workdir: Path,
        layout: ClusterLayout,
        *,
        heap: str = CLUSTER_HEAP,
        extra_properties: ExtraProperties | None = None,
        format_args: Sequence[str] = (),
    ) -> None:
        self.workdir = workdir
        self.layout = layout
        voters = list(layout.nodes)
        self.nodes: dict[int, KafkaBroker] = {
            node.node_id: KafkaBroker(
                workdir / f"node-{node.node_id}",
                f"{node.host}:{node.port}",
                heap=heap,
                node=node,
                voters=voters,
                extra_properties=extra_properties(node) if extra_properties else None,
                format_args=format_args,
            )
            for node in layout.nodes
        }

    @classmethod
    def open(cls, workdir: Path, ports: list[int], *, heap: str = CLUSTER_HEAP) -> KafkaCluster:
        """The cluster in ``workdir``: its saved layout if there is one, else a new one."""
        layout_path = workdir / "cluster.json"
        if layout_path.exists():
            layout = ClusterLayout.load(layout_path.read_text())
        else:
            layout = ClusterLayout.new(ports)
            workdir.mkdir(parents=True, exist_ok=True)
            layout_path.write_text(layout.dump() + "\n")
        return cls(workdir, layout, heap=heap)

    @property
    def bootstrap(self) -> str:
        """Every node's address, comma-separated (a client's bootstrap list)."""
        return ",".join(node.bootstrap for node in self.nodes.values())

    @property
    def lock_path(self) -> Path:
        """The lock ``up`` and ``down`` hold while they act on the cluster."""
        return self.workdir / "up.lock"

    def start(self, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start every node that is not running and wait until each answers."""
        waiting = [node for node in self.nodes.values() if node.pid() is None]
        unformatted = [node for node in waiting if not node.config_path.exists()]
        # Formatting is a JVM start of its own per node: run them side by side.
        with ThreadPoolExecutor(max_workers=len(self.nodes)) as pool:
            list(pool.map(lambda node: node.format(self.layout.cluster_id), unformatted))
        for node in waiting:
            node.launch()
        for node in waiting:
            node.wait_until_answering(timeout_s)

    def kill(self, node_id: int, signum: int = signal.SIGKILL, timeout_s: float = 30.0) -> None:
        """Send ``signum`` to one node and wait until it is gone (SIGKILL after ``timeout_s``)."""
        self.nodes[node_id].stop(timeout_s=timeout_s, signum=signum)

    def restart(self, node_id: int, timeout_s: float = START_TIMEOUT_S) -> None:
        """Start one stopped node again (same ports and data) and wait until it answers."""
        node = self.nodes[node_id]
        node.launch()
        node.wait_until_answering(timeout_s)

    def running(self) -> list[int]:
        """The ids of the nodes whose process is alive."""
        return [node_id for node_id, node in self.nodes.items() if node.pid() is not None]

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop every node cleanly (SIGTERM to all at once, then wait for each)."""
        for node_id in self.running():
            pid = self.nodes[node_id].pid()
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGTERM)
        for node in self.nodes.values():
            node.stop(timeout_s)
