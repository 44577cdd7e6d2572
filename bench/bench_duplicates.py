"""What a forwarder crash repeats, and what committing more often costs.

At-least-once delivery means a SIGKILLed forwarder's successor re-reads everything after the
last commit, so the collector receives it twice. For each commit interval (the old default, 5 s,
and the current one, 1 s) this benchmark

1. fills a topic with N records and lets one forwarder deliver half of them to a count-only
   collector, SIGKILLs it, and lets a second forwarder in the same group finish: the events
   counted beyond N are the duplicates, reported as a fraction of the events delivered;
2. measures the forwarder's throughput on another N records (as ``bench_forwarder`` does).

    uv run python -m bench.bench_duplicates [--events 40000] [--intervals 5,1]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
import uuid
from pathlib import Path

from bench.bench_forwarder import (
    _get_json,
    _wait_for,
    collector_process,
    fill,
    forwarder_env,
    forwarder_process,
    forwarder_rate,
    kafka,
)
from bench.results import record

EVENTS = 40_000
SETTLE_S = 2.0


def _count(collector_url: str) -> int:
    return int(_get_json(collector_url + "/micro/good/count")["count"])


def _wait_for_count(collector_url: str, at_least: int, timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while (count := _count(collector_url)) < at_least:
        if time.monotonic() > deadline:
            raise RuntimeError(f"collector counted {count} of {at_least} within {timeout_s} s")
        time.sleep(0.02)
    return count


def _settled(collector_url: str) -> int:
    """The count once it stopped moving for ``SETTLE_S`` (redeliveries arrive last)."""
    count, since = _count(collector_url), time.monotonic()
    while time.monotonic() - since < SETTLE_S:
        time.sleep(0.1)
        now = _count(collector_url)
        if now != count:
            count, since = now, time.monotonic()
    return count


def sigkill_duplicates(
    bootstrap: str, topic: str, events: int, interval_s: float, log_dir: Path
) -> int:
    """Duplicates after one forwarder is SIGKILLed halfway and a second one finishes."""
    group = f"bench-dup-{uuid.uuid4().hex[:8]}"
    overrides = {"FORWARDER_COMMIT_INTERVAL_S": str(interval_s), "FORWARDER_GROUP_ID": group}
    with collector_process() as collector_url:
        env = {**forwarder_env(bootstrap, topic, collector_url), **overrides}
        with forwarder_process(env, log_dir / f"{topic}-first.log") as first:
            _wait_for(f"http://127.0.0.1:{env['FORWARDER_ADMIN_PORT']}/readyz", 60, first)
            _wait_for_count(collector_url, events // 2, 150)
            first.send_signal(signal.SIGKILL)
            first.wait()
        env = {**forwarder_env(bootstrap, topic, collector_url), **overrides}
        with forwarder_process(env, log_dir / f"{topic}-second.log"):
            _wait_for_count(collector_url, events, 150)
            delivered = _settled(collector_url)
    return delivered - events


def main() -> None:
    """Measure duplicates and throughput per commit interval; record the figures."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--intervals", default="5,1")
    parser.add_argument("--log-dir", type=Path, default=Path("/tmp"))  # noqa: S108
    args = parser.parse_args()
    figures: dict[str, float] = {}
    with kafka() as bootstrap:
        for interval in (float(value) for value in args.intervals.split(",")):
            name = f"{interval:g}s"
            topic = f"bench-dup-{name}-{uuid.uuid4().hex[:8]}"
            asyncio.run(fill(bootstrap, topic, args.events))
            duplicates = sigkill_duplicates(bootstrap, topic, args.events, interval, args.log_dir)
            figures[f"forwarder_sigkill_duplicates_ratio_commit_{name}"] = duplicates / (
                args.events + duplicates
            )
            rate_topic = f"bench-dup-rate-{name}-{uuid.uuid4().hex[:8]}"
            asyncio.run(fill(bootstrap, rate_topic, args.events))
            figures[f"forwarder_events_per_s_commit_{name}"] = forwarder_rate(
                bootstrap,
                rate_topic,
                args.events,
                args.log_dir / f"{rate_topic}.log",
                overrides={"FORWARDER_COMMIT_INTERVAL_S": str(interval)},
            )
            print(f"commit every {name}: {duplicates} duplicates", flush=True)
    record(figures)


if __name__ == "__main__":
    main()
