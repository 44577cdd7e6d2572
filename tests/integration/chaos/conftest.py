"""Fixtures of the fault scenarios: the pipeline on the cluster, and the figures they report.

With ``CHAOS_RESULTS`` set to a path, the session writes every scenario's figures there as
JSON (``make chaos`` prints them as a table and merges them into ``bench/results.json``).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from scripts.kafka.cluster import KafkaCluster
from tests.integration.chaos.chaos_it import ChaosPipeline, ScenarioResult
from tests.support.collector import RunningCollector

Record = Callable[[ScenarioResult], None]


@pytest.fixture(scope="session")
def chaos_results() -> Iterator[dict[str, ScenarioResult]]:
    """Every scenario's result, written to ``CHAOS_RESULTS`` at the end of the session."""
    results: dict[str, ScenarioResult] = {}
    yield results
    target = os.environ.get("CHAOS_RESULTS", "").strip()
    if target and results:
        rows = {
            name: {
                "figures": result.figures(),
                "arrived": result.accounting.arrived,
                "failures": dict(result.load.failures),
                "slowest_s": round(result.load.slowest_s, 2),
            }
            for name, result in results.items()
        }
        Path(target).write_text(json.dumps(rows, indent=2) + "\n")


@pytest.fixture
def record_result(chaos_results: dict[str, ScenarioResult]) -> Record:
    """Keep a scenario's figures for the report."""

    def record(result: ScenarioResult) -> None:
        chaos_results[result.name] = result
        print(f"{result.name}: {result.accounting.summary()}; {result.load.summary()}")

    return record


@pytest.fixture
async def pipeline(
    cluster: KafkaCluster, collector: RunningCollector, tmp_path: Path
) -> AsyncIterator[ChaosPipeline]:
    """The pipeline on the whole cluster (each test starts it with its own shape)."""
    running = ChaosPipeline(cluster.bootstrap, collector, tmp_path)
    try:
        yield running
    finally:
        await running.close()
