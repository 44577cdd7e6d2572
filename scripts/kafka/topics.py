"""Topics the project's scripts create: replication chosen by the size of the cluster.

On a cluster of three nodes or more a topic gets replication factor 3 and
``min.insync.replicas=2`` (as in production and in ``terraform/``); on a single development
broker, 1 and 1.
"""

from __future__ import annotations

from collections.abc import Mapping

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from scripts.kafka.properties import replication_for

__all__ = ["broker_count", "new_topic"]


async def broker_count(admin: AIOKafkaAdminClient) -> int:
    """How many brokers the started ``admin`` client's cluster has."""
    cluster = await admin.describe_cluster()
    return len(cluster["brokers"])


def new_topic(
    name: str, partitions: int, *, brokers: int, configs: Mapping[str, str] | None = None
) -> NewTopic:
    """A topic of ``partitions`` replicated as :func:`replication_for` says for ``brokers``."""
    replicas, min_isr = replication_for(brokers)
    topic_configs = {"min.insync.replicas": str(min_isr), **(configs or {})}
    return NewTopic(name, partitions, replicas, topic_configs=topic_configs)
