"""The whole pipeline as processes: the API and the forwarder on the suite's broker.

:func:`create_topics` makes a fresh set of the three topics, named by the variables the services
read; :func:`run_pipeline` starts the API and the forwarder against them and a collector, and
checks on the way out that both stopped cleanly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

from tests.support.kafka import create_topic, unique_name
from tests.support.services import ServiceProcess, free_port

__all__ = ["RunningPipeline", "create_topics", "run_pipeline"]


class RunningPipeline(NamedTuple):
    """The API's base URL and both processes (their logs stay readable after they stop)."""

    url: str
    api: ServiceProcess
    forwarder: ServiceProcess


async def create_topics(
    bootstrap: str, prefix: str, *, options: dict[str, Any] | None = None
) -> dict[str, str]:
    """Fresh topics (two partitions for events), keyed by the variable that names each.

    ``options`` are the aiokafka client options of a secured broker.
    """
    names = {
        "EVENTS_TOPIC": unique_name(f"{prefix}-events"),
        "BAD_EVENTS_TOPIC": unique_name(f"{prefix}-bad"),
        "DLQ_TOPIC": unique_name(f"{prefix}-dlq"),
    }
    await create_topic(bootstrap, names["EVENTS_TOPIC"], partitions=2, options=options)
    await create_topic(bootstrap, names["BAD_EVENTS_TOPIC"], options=options)
    await create_topic(bootstrap, names["DLQ_TOPIC"], options=options)
    return names


@contextmanager
def run_pipeline(
    *,
    kafka_env: Mapping[str, str],
    topics: Mapping[str, str],
    collector_url: str,
    workdir: Path,
    api_env: Mapping[str, str],
) -> Iterator[RunningPipeline]:
    """Run the API (with ``api_env`` added) and the forwarder, both connecting to Kafka with
    ``kafka_env`` (``KAFKA_BOOTSTRAP_SERVERS`` and any security settings)."""
    shared = {**kafka_env, "LOG_LEVEL": "INFO", **topics}
    api_port, forwarder_admin_port = free_port(), free_port()
    api = ServiceProcess(
        "api-service",
        {
            **shared,
            "API_HOST": "127.0.0.1",
            "API_PORT": str(api_port),
            "API_ADMIN_HOST": "127.0.0.1",
            "API_ADMIN_PORT": str(free_port()),
            "API_DRAIN_GRACE_S": "0",
            **api_env,
        },
        ready_url=f"http://127.0.0.1:{api_port}/readyz",
        log_path=workdir / "api.log",
    )
    forwarder = ServiceProcess(
        "forwarder-service",
        {
            **shared,
            "COLLECTOR_URL": collector_url,
            "FORWARDER_GROUP_ID": unique_name("e2e-group"),
            "FORWARDER_ADMIN_PORT": str(forwarder_admin_port),
            "FORWARDER_ADMIN_HOST": "127.0.0.1",
        },
        ready_url=f"http://127.0.0.1:{forwarder_admin_port}/readyz",
        log_path=workdir / "forwarder.log",
    )
    with api, forwarder:
        yield RunningPipeline(f"http://127.0.0.1:{api_port}", api, forwarder)
        assert forwarder.stop() == 0, forwarder.log()
        assert api.stop() == 0, api.log()
