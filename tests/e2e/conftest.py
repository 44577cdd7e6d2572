"""The end-to-end tests' pipeline: the API and the forwarder as processes on the session broker,
delivering to each test's collector, with fresh topics per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.collector import RunningCollector
from tests.support.pipeline import RunningPipeline, create_topics, run_pipeline

API_KEY = "e2e-" + uuid.uuid4().hex
"""The API key the pipeline's API accepts."""


@pytest.fixture
async def topics(kafka_bootstrap: str) -> dict[str, str]:
    """Fresh topics for this test, named by the variables the services read."""
    return await create_topics(kafka_bootstrap, "e2e")


@pytest.fixture
def pipeline(
    kafka_bootstrap: str, topics: dict[str, str], collector: RunningCollector, tmp_path: Path
) -> Iterator[RunningPipeline]:
    """The API and the forwarder, wired to the session broker and this test's collector."""
    with run_pipeline(
        kafka_env={"KAFKA_BOOTSTRAP_SERVERS": kafka_bootstrap},
        topics=topics,
        collector_url=collector.base_url,
        workdir=tmp_path,
        api_env={"API_KEYS": API_KEY},
    ) as running:
        yield running
