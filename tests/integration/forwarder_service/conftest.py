"""Fixtures of the forwarder's integration tests (helpers live in ``forwarder_it``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.forwarder_service.forwarder_it import Forwarder, fast_env
from tests.support.collector import RunningCollector
from tests.support.kafka import create_topic, unique_name


@dataclass(frozen=True, slots=True)
class Topics:
    """A fresh events topic (2 partitions), dead-letter topic and group for one test."""

    events: str
    dlq: str
    group: str


StartForwarder = Callable[..., Awaitable[Forwarder]]


@pytest.fixture
async def topics(kafka_bootstrap: str) -> Topics:
    """Fresh topics and a fresh group name."""
    events = await create_topic(kafka_bootstrap, unique_name("fwd-events"), partitions=2)
    dlq = await create_topic(kafka_bootstrap, unique_name("fwd-dlq"))
    return Topics(events=events, dlq=dlq, group=unique_name("fwd-group"))


@pytest.fixture
async def start_forwarder(
    kafka_bootstrap: str, topics: Topics, collector: RunningCollector, tmp_path: Path
) -> AsyncIterator[StartForwarder]:
    """Start ``forwarder-service`` processes on this test's topics; killed at teardown.

    Keyword arguments override the environment (``FORWARDER_...=...``); ``ready_path`` is
    the admin path awaited before returning (``/healthz`` when readiness is not expected).
    """
    started: list[Forwarder] = []

    async def start(ready_path: str = "/readyz", **overrides: str) -> Forwarder:
        env = fast_env(
            kafka_bootstrap,
            topic=topics.events,
            dlq=topics.dlq,
            group=topics.group,
            collector_url=collector.base_url,
        )
        env.update(overrides)
        forwarder = Forwarder(
            env, tmp_path / f"forwarder-{len(started)}.log", ready_path=ready_path
        )
        started.append(forwarder)
        await forwarder.start()
        return forwarder

    yield start
    for forwarder in started:
        await forwarder.kill()
