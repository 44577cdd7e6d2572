"""Where the API's memory goes under load: tracemalloc snapshots of a running ``api-service``.

The API runs as a process on a Kafka broker (``KAFKA_BOOTSTRAP_SERVERS`` if one answers, else
one of its own) under a steady load of anonymous page views (``--rate`` requests/s of 5 events).
After ``--warm-up-s`` it starts tracing (tracing from start-up would make the imports take
minutes) and takes a snapshot; then one every ``--interval-s``. It prints the source lines whose
memory grew most between the first and the last snapshot, with bytes per request, so what a
request leaves behind shows up by file and line (in-flight requests account for some KiB).

    uv run python -m bench.api_memory [--rate 100] [--warm-up-s 30] [--interval-s 120]

Tracing slows the API several times, so the rate it reaches is lower than ``--rate``; the
requests between snapshots are counted, not assumed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from types import FrameType

from bench.bench_forwarder import _wait_for, kafka
from bench.soak import API_KEY, _create_topics, _rss_mb, soak_api_env
from scripts.kafka.broker import free_port
from tests.support.load import LoadGenerator

SNAPSHOT_DIR_ENV = "API_MEMORY_SNAPSHOT_DIR"


def serve() -> int:
    """Run ``api-service`` here; each SIGUSR1 starts tracing if needed and dumps a snapshot."""
    from api_service.main import main  # noqa: PLC0415 - only the traced child runs the API

    directory = Path(os.environ[SNAPSHOT_DIR_ENV])
    numbers = itertools.count()

    def dump(_signum: int, _frame: FrameType | None) -> None:
        gc.collect()  # what is left is held, not merely not yet collected
        if not tracemalloc.is_tracing():
            tracemalloc.start()
        path = directory / f"snapshot-{next(numbers)}"
        tracemalloc.take_snapshot().dump(str(path))
        path.with_suffix(".done").touch()

    signal.signal(signal.SIGUSR1, dump)
    return main()


async def _snapshot(pid: int, directory: Path, number: int, timeout_s: float = 120) -> Path:
    os.kill(pid, signal.SIGUSR1)
    done = directory / f"snapshot-{number}.done"
    deadline = time.monotonic() + timeout_s
    while not done.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"no snapshot from the API within {timeout_s} s")
        await asyncio.sleep(0.2)
    return directory / f"snapshot-{number}"


async def _drive(api_url: str, pid: int, directory: Path, args: argparse.Namespace) -> None:
    load = LoadGenerator(api_url, API_KEY, rate_per_s=args.rate, batch=5, workers=8)
    load.start()
    taken: list[tuple[Path, int]] = []
    try:
        await asyncio.sleep(args.warm_up_s)  # pacing the run, not waiting for a condition
        for number in range(args.snapshots):
            if number:
                await asyncio.sleep(args.interval_s)
            path = await _snapshot(pid, directory, number)
            taken.append((path, load.report.requests))
            print(
                f"snapshot {number}: {load.report.requests} requests, RSS {_rss_mb(pid):.1f} MB",
                flush=True,
            )
    finally:
        report = await load.stop()
    print(f"load: {report.summary()}")
    _report(taken, args.top)


def _report(taken: list[tuple[Path, int]], top: int) -> None:
    (first, first_requests), (last, last_requests) = taken[0], taken[-1]
    ignored = [tracemalloc.Filter(inclusive=False, filename_pattern=tracemalloc.__file__)]
    before = tracemalloc.Snapshot.load(str(first)).filter_traces(ignored)
    after = tracemalloc.Snapshot.load(str(last)).filter_traces(ignored)
    stats = after.compare_to(before, "lineno")
    requests = max(1, last_requests - first_requests)
    growth = sum(stat.size_diff for stat in stats)
    print(
        f"between the first and last snapshot: {requests} requests, "
        f"{growth / 1024:+.1f} KiB traced ({growth / requests:+.0f} bytes a request)"
    )
    for stat in stats[:top]:
        print(
            f"{stat.size_diff / 1024:+10.1f} KiB {stat.count_diff:+8d} blocks "
            f"{stat.size_diff / requests:+7.0f} B/request  {stat.traceback[0]}"
        )


def main() -> None:
    """Run the API under load, take the snapshots and print what grew."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=100.0, help="requests/s (5 events each)")
    parser.add_argument("--warm-up-s", type=float, default=30.0)
    parser.add_argument("--interval-s", type=float, default=120.0)
    parser.add_argument("--snapshots", type=int, default=3)
    parser.add_argument("--top", type=int, default=10)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        sys.exit(serve())
    run = uuid.uuid4().hex[:8]
    events, bad = f"memory-events-{run}", f"memory-bad-{run}"
    api_port, admin_port = free_port(), free_port()
    with kafka() as bootstrap, tempfile.TemporaryDirectory(prefix="api-memory-") as work:
        directory = Path(work)
        asyncio.run(_create_topics(bootstrap, [events, bad]))
        env = {
            **os.environ,
            **soak_api_env(bootstrap, events, bad, api_port, admin_port),
            SNAPSHOT_DIR_ENV: work,
        }
        with (directory / "api.log").open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "bench.api_memory", "--serve"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            _wait_for(f"http://127.0.0.1:{admin_port}/readyz", 60, process)
            asyncio.run(_drive(f"http://127.0.0.1:{api_port}", process.pid, directory, args))
        finally:
            process.terminate()
            process.wait(30)


if __name__ == "__main__":
    main()
