"""``make soak``: a steady load through the whole pipeline for a set time, watching for leaks.

API, forwarder and local collector run as processes on a Kafka broker (``KAFKA_BOOTSTRAP_SERVERS``
if one answers, else one of its own). A load generator posts events with unique ids at a steady
rate; the collector is read every 0.25 s, so each event's time from the API's acknowledgement to
its arrival at the collector is known (to that resolution). Every minute it prints both services'
RSS, that minute's p99 of the acknowledgement-to-arrival time, and the consumer lag. At the end
it records ``soak_rss_growth_mb_api``, ``soak_rss_growth_mb_forwarder`` (RSS at the end minus
RSS after the warm-up, the first fifth of the run) and ``soak_e2e_p99_ms`` (after the warm-up).

    uv run python -m bench.soak [--minutes 10] [--rate 20]      (SOAK_MINUTES also sets it)
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]  # no stubs in the lock
from aiokafka.admin import AIOKafkaAdminClient

from bench.bench_forwarder import _wait_for, forwarder_env, forwarder_process, kafka
from bench.results import record
from scripts.kafka.broker import free_port
from scripts.kafka.topics import broker_count, new_topic
from tests.support.load import LoadGenerator
from tests.support.services import BIN

API_KEY = "soak-key-0123456789abcdef"
POLL_S = 0.25


class Arrivals:
    """Acknowledgement times by event id, and the latencies of those that arrived."""

    def __init__(self) -> None:
        self.acknowledged_at: dict[str, float] = {}
        self.latencies_s: list[tuple[float, float]] = []  # (arrival time, latency)
        self.early: set[str] = set()
        self.offset = 0

    def acknowledged(self, eids: list[str], at: float) -> None:
        """Note the acknowledgement of ``eids`` (some may have been read at the collector
        already: the load generator's task can run after the pipeline delivered)."""
        for eid in eids:
            if eid in self.early:
                self.early.discard(eid)
                self.latencies_s.append((at, 0.0))
            else:
                self.acknowledged_at[eid] = at

    async def poll(self, client: httpx.AsyncClient, collector_url: str) -> None:
        """Read the events that arrived since the last poll and time them."""
        page = await client.get(
            f"{collector_url}/micro/good", params={"offset": self.offset, "limit": 5000}
        )
        entries = page.json()
        now = time.monotonic()
        self.offset += len(entries)
        for entry in entries:
            acked = self.acknowledged_at.pop(entry["eid"], None)
            if acked is not None:
                self.latencies_s.append((now, now - acked))
            else:
                self.early.add(entry["eid"])

    def p99_ms(self, since: float) -> float:
        """p99 of the latencies of arrivals after ``since`` (0 if none)."""
        values = [latency for at, latency in self.latencies_s if at >= since]
        if len(values) < 2:  # quantiles needs two points
            return 0.0
        return statistics.quantiles(values, n=100)[98] * 1000


async def _create_topics(bootstrap: str, names: list[str]) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        brokers = await broker_count(admin)
        await admin.create_topics([new_topic(name, 3, brokers=brokers) for name in names])
    finally:
        await admin.close()


@contextmanager
def _process(command: str, env: dict[str, str], log: Path, ready: str) -> Iterator[int]:
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own console script
            [str(BIN / command)], env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        _wait_for(ready, 60, process)
        yield process.pid
    finally:
        process.terminate()
        process.wait(30)


async def _lag(client: httpx.AsyncClient, admin_url: str) -> float:
    text = (await client.get(f"{admin_url}/metrics")).text
    name = "tracking_forwarder_consumer_lag"
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith((name + " ", name + "{"))
    )


def soak_api_env(
    bootstrap: str, events: str, bad: str, port: int, admin_port: int
) -> dict[str, str]:
    """The API's environment under a soak: on 127.0.0.1, no rate limit, warnings only."""
    return {
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "EVENTS_TOPIC": events,
        "BAD_EVENTS_TOPIC": bad,
        "API_KEYS": API_KEY,
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "API_ADMIN_HOST": "127.0.0.1",
        "API_ADMIN_PORT": str(admin_port),
        "API_RATE_LIMIT_PER_S": "0",
        "LOG_LEVEL": "WARNING",
    }


def _rss_mb(pid: int) -> float:
    return float(psutil.Process(pid).memory_info().rss) / (1024 * 1024)


async def _drive(
    api_url: str,
    collector_url: str,
    pids: dict[str, int],
    forwarder_admin: str,
    args: argparse.Namespace,
) -> dict[str, float]:
    arrivals = Arrivals()
    load = LoadGenerator(
        api_url, API_KEY, rate_per_s=args.rate, batch=5, on_acknowledged=arrivals.acknowledged
    )
    started = time.monotonic()
    duration_s = args.minutes * 60
    warm_until = started + duration_s / 5
    warm_rss: dict[str, float] = {}
    next_report = started + 60
    load.start()
    async with httpx.AsyncClient(timeout=10) as client:
        while (now := time.monotonic()) < started + duration_s:
            await arrivals.poll(client, collector_url)
            if not warm_rss and now >= warm_until:
                warm_rss = {name: _rss_mb(pid) for name, pid in pids.items()}
            if now >= next_report:
                rss = "  ".join(f"{name} {_rss_mb(pid):6.1f} MB" for name, pid in pids.items())
                print(
                    f"[{(now - started) / 60:4.1f} min] RSS {rss}  "
                    f"p99 ack->collector {arrivals.p99_ms(now - 60):7.0f} ms  "
                    f"lag {await _lag(client, forwarder_admin):6.0f}",
                    flush=True,
                )
                next_report += 60
            await asyncio.sleep(POLL_S)
        end_rss = {name: _rss_mb(pid) for name, pid in pids.items()}
        report = await load.stop()
        deadline = time.monotonic() + 60
        while arrivals.acknowledged_at and time.monotonic() < deadline:
            await arrivals.poll(client, collector_url)
            await asyncio.sleep(POLL_S)
    print(f"load: {report.summary()}; not arrived: {len(arrivals.acknowledged_at)}")
    return {
        "soak_rss_growth_mb_api": end_rss["api"] - warm_rss.get("api", end_rss["api"]),
        "soak_rss_growth_mb_forwarder": end_rss["forwarder"]
        - warm_rss.get("forwarder", end_rss["forwarder"]),
        "soak_e2e_p99_ms": arrivals.p99_ms(warm_until),
        "soak_not_arrived": len(arrivals.acknowledged_at),
    }


def main() -> None:
    """Run the soak and record its figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "10"))
    )
    parser.add_argument("--rate", type=float, default=20.0, help="requests/s (5 events each)")
    parser.add_argument("--log-dir", type=Path, default=Path("/tmp"))  # noqa: S108
    args = parser.parse_args()
    run = uuid.uuid4().hex[:8]
    events, bad, dlq = f"soak-events-{run}", f"soak-bad-{run}", f"soak-dlq-{run}"
    collector_port, api_port, api_admin = free_port(), free_port(), free_port()
    collector_url = f"http://127.0.0.1:{collector_port}"
    api_url = f"http://127.0.0.1:{api_port}"
    expected_events = int(args.rate * 5 * args.minutes * 60 * 2)
    with kafka() as bootstrap:
        asyncio.run(_create_topics(bootstrap, [events, bad, dlq]))
        collector_env = {
            "COLLECTOR_HOST": "127.0.0.1",
            "COLLECTOR_PORT": str(collector_port),
            "COLLECTOR_MAX_EVENTS": str(expected_events),
            "LOG_LEVEL": "WARNING",
        }
        api_env = soak_api_env(bootstrap, events, bad, api_port, api_admin)
        fwd_env = {**forwarder_env(bootstrap, events, collector_url), "DLQ_TOPIC": dlq}
        fwd_admin = f"http://127.0.0.1:{fwd_env['FORWARDER_ADMIN_PORT']}"
        logs = args.log_dir
        with (
            _process(
                "local-collector",
                collector_env,
                logs / f"soak-collector-{run}.log",
                f"{collector_url}/healthz",
            ),
            _process(
                "api-service",
                api_env,
                logs / f"soak-api-{run}.log",
                f"http://127.0.0.1:{api_admin}/readyz",
            ) as api_pid,
            forwarder_process(fwd_env, logs / f"soak-forwarder-{run}.log") as forwarder,
        ):
            _wait_for(f"{fwd_admin}/readyz", 60, forwarder)
            pids = {"api": api_pid, "forwarder": forwarder.pid}
            figures = asyncio.run(_drive(api_url, collector_url, pids, fwd_admin, args))
    record(figures)


if __name__ == "__main__":
    main()
