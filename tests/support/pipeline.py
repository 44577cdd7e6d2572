"""The whole pipeline as processes: the API and the forwarder on the suite's broker.

:func:`create_topics` makes a fresh set of the three topics, named by the variables the services
read; :func:`run_pipeline` starts the API and the forwarder against them and a collector, and
checks on the way out that both stopped cleanly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.support.kafka import create_topic, unique_name
from tests.support.services import ServiceProcess, free_port

__all__ = ["create_topics", "run_pipeline"]


async def create_topics(bootstrap: str, prefix: str) -> dict[str, str]:
    """Fresh topics (two partitions for events), keyed by the variable that names each."""
    names = {
        "EVENTS_TOPIC": unique_name(f"{prefix}-events"),
        "BAD_EVENTS_TOPIC": unique_name(f"{prefix}-bad"),
        "DLQ_TOPIC": unique_name(f"{prefix}-dlq"),
    }
    await create_topic(bootstrap, names["EVENTS_TOPIC"], partitions=2)
    await create_topic(bootstrap, names["BAD_EVENTS_TOPIC"])
    await create_topic(bootstrap, names["DLQ_TOPIC"])
    return names


@contextmanager
def run_pipeline(
    *,
    bootstrap: str,
    topics: Mapping[str, str],
    collector_url: str,
    workdir: Path,
    api_env: Mapping[str, str],
) -> Iterator[str]:
    """Run the API (with ``api_env`` added) and the forwarder; yield the API's base URL."""
    shared = {"KAFKA_BOOTSTRAP_SERVERS": bootstrap, "LOG_LEVEL": "INFO", **topics}
    api_port, forwarder_admin_port = free_port(), free_port()
    api = ServiceProcess(
        "api-service",
        {
            **shared,
            "API_HOST": "127.0.0.1",
            "API_PORT": str(api_port),
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
        yield f"http://127.0.0.1:{api_port}"
        assert forwarder.stop() == 0, forwarder.log()
        assert api.stop() == 0, api.log()
