"""The pipeline as real processes on the three-node cluster, for the fault scenarios.

:class:`ChaosPipeline` creates the topics (replication 3, ``min.insync.replicas=2``), starts the
``api-service`` process and any number of ``forwarder-service`` processes against the cluster,
delivering to the test's local collector, and accounts for what arrived. The processes come from
the API's and the forwarder's own integration helpers, so they run exactly as there.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.integration.api_service.api_it import KEY, Topics, api_process
from tests.integration.forwarder_service.forwarder_it import Forwarder, fast_env
from tests.support.collector import RunningCollector
from tests.support.kafka import create_topic, unique_name
from tests.support.load import Accounting, LoadGenerator, LoadReport, account
from tests.support.services import ServiceProcess

# ``make chaos`` runs every scenario, longer; ``make test`` the short ones.
FULL = os.environ.get("CHAOS_FULL", "") == "1"
PRODUCE_TIMEOUT_S = 5.0
RETRY_AFTER_S = 1


@dataclass(frozen=True, slots=True)
class ScenarioResult:
    """The figures of one scenario, as ``make chaos`` reports them."""

    name: str
    accounting: Accounting
    load: LoadReport

    def figures(self) -> dict[str, float]:
        """``chaos_<scenario>_*`` figures for ``bench/results.json``."""
        prefix = f"chaos_{self.name}"
        return {
            f"{prefix}_acknowledged": self.accounting.acknowledged,
            f"{prefix}_lost": self.accounting.lost,
            f"{prefix}_duplicates": self.accounting.duplicates,
            f"{prefix}_refused": self.load.refused,
            f"{prefix}_refused_s": round(self.load.refused_s, 2),
        }


class ChaosPipeline:
    """The API and forwarders on the cluster at ``bootstrap``, delivering to ``collector``."""

    def __init__(self, bootstrap: str, collector: RunningCollector, workdir: Path) -> None:
        self.bootstrap = bootstrap
        self.collector = collector
        self.workdir = workdir
        self.topics = Topics(bootstrap)
        self.dlq = unique_name("chaos-dlq")
        self.group = unique_name("chaos-group")
        self.api: ServiceProcess | None = None
        self.api_url = ""
        self.api_admin = ""
        self.forwarders: list[Forwarder] = []

    async def start(self, *, partitions: int = 3, forwarders: int = 1, **api_env: str) -> None:
        """Create the topics, start the API and ``forwarders`` forwarder processes."""
        await self.topics.create(partitions)
        await create_topic(self.bootstrap, self.dlq)
        self.api, self.api_url, self.api_admin = api_process(
            self.topics,
            self.workdir,
            API_PRODUCE_TIMEOUT_S=str(PRODUCE_TIMEOUT_S),
            API_RETRY_AFTER_S=str(RETRY_AFTER_S),
            API_RATE_LIMIT_PER_S="0",
            **api_env,
        )
        await asyncio.to_thread(self.api.start, 60.0)
        for _ in range(forwarders):
            await self.add_forwarder()

    async def add_forwarder(self, **overrides: str) -> Forwarder:
        """Start one more forwarder in the group and wait until it is ready."""
        env = fast_env(
            self.bootstrap,
            topic=self.topics.events,
            dlq=self.dlq,
            group=self.group,
            collector_url=self.collector.base_url,
        )
        env.update(overrides)
        log = self.workdir / f"forwarder-{len(self.forwarders)}.log"
        forwarder = Forwarder(env, log, ready_path="/readyz")
        self.forwarders.append(forwarder)
        await forwarder.start()
        return forwarder

    def load(self, *, rate_per_s: float = 40.0, batch: int = 5) -> LoadGenerator:
        """A load generator aimed at the API (not started); a request unanswered 10 s past
        the produce deadline counts as a hang."""
        return LoadGenerator(
            self.api_url, KEY, rate_per_s=rate_per_s, batch=batch, deadline_s=PRODUCE_TIMEOUT_S + 10
        )

    async def running_load(self, first: int) -> LoadGenerator:
        """Start a load and wait until ``first`` events were acknowledged."""
        load = self.load()
        load.start()
        await load.wait_for_acknowledged(first)
        return load

    async def finish(
        self, name: str, load: LoadGenerator, record: Callable[[ScenarioResult], None]
    ) -> ScenarioResult:
        """Stop the load, account for it, record the figures, and check what every scenario
        must keep: nothing acknowledged lost, every request answered, 503s with Retry-After."""
        report = await load.stop()
        accounting = await self.delivered(report.acknowledged)
        result = ScenarioResult(name, accounting, report)
        record(result)
        assert accounting.lost == 0, f"{accounting.summary()}\n{self.logs()}"
        assert not report.failures, report.summary()
        assert report.retry_after_missing == 0
        return result

    async def delivered(self, acknowledged: list[str], timeout_s: float = 90.0) -> Accounting:
        """Wait until every acknowledged event reached the collector (or the deadline); then
        account for them, duplicates included."""
        wanted = set(acknowledged)
        deadline = time.monotonic() + timeout_s
        while True:
            arrivals = await self.collector.eids()
            if wanted <= set(arrivals) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.2)
        # Redeliveries of the last moments land shortly after; let them count.
        await asyncio.sleep(1.0)
        return account(acknowledged, await self.collector.eids())

    def logs(self) -> str:
        """The end of every process's log, for a failure message."""
        parts = [] if self.api is None else [f"--- api\n{self.api.log(30)}"]
        parts += [f"--- forwarder {i}\n{f.service.log(30)}" for i, f in enumerate(self.forwarders)]
        return "\n".join(parts)

    async def close(self) -> None:
        """Stop every process (SIGTERM, SIGKILL after a bound)."""
        for forwarder in self.forwarders:
            await forwarder.stop(timeout_s=20)
        if self.api is not None:
            await asyncio.to_thread(self.api.stop, 20.0)
