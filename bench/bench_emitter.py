"""Emitter throughput and peak memory: this core vs snowplow-tracker's Emitter and AsyncEmitter.

The same page views (each with one entity, plain ``co``) at the same batch size are delivered
to the local collector, started as its own process in count-only mode. Each contender runs in
a fresh subprocess so its peak RSS is its own; the collector's count proves every event of
every run arrived. AsyncEmitter gets as many threads as this core's in-flight limit.

The contenders alternate ``--rounds`` times (this core, Snowplow's ``Emitter``, its
``AsyncEmitter``, then again), and the best rate of each is kept: the shared host's speed
moves by 1.5-2x within minutes, and alternating puts every contender through the same
swings. Snowplow's contenders deliver ``--snowplow-events`` (60,000) instead of ``--events``
(200,000), so three rounds take 40-80 s: their rate is steady after a few thousand events
(a run still lasts 3-9 s), and the events are the same kind, built the same way, at the
same batch size, to the same collector. The peak RSS recorded is each contender's highest
over its rounds.

    uv run python -m bench.bench_emitter [--events 200000] [--snowplow-events 60000]
        [--batch-size 50] [--rounds 3]

This core runs on uvloop, the loop docs/emitter.md recommends (``BENCH_EMITTER_LOOP=asyncio``
runs it on asyncio's own loop, for comparison).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.request
from typing import Any

import psutil  # type: ignore[import-untyped]  # no stubs in the lock
import uvloop

from bench.child import run_child

# Enough that the core runs for about a second: at 50,000 it ran for 0.25-0.36 s, where a
# scheduler hiccup or the first connection weighed on its figure alone (Snowplow's took 2-4 s).
EVENTS = 200_000
SNOWPLOW_EVENTS = 60_000
ROUNDS = 3
BATCH_SIZE = 50
IN_FLIGHT = 4
TARGET_RATIO = 10.0  # at least 10x the faster of Snowplow's two emitters
CONTENDERS = ("emitter", "snowplow_emitter", "snowplow_async_emitter")


def _entity(n: int) -> dict[str, Any]:
    return {"schema": "iglu:com.acme/user/jsonschema/1-0-0", "data": {"id": n, "plan": "pro"}}


def _url(n: int) -> str:
    return f"https://shop.example.com/products/{n % 997}?ref=bench"


async def _run_core(base_url: str, events: int, batch_size: int) -> int:
    from tracking_common.emitter import AsyncEmitter, Tracker  # noqa: PLC0415

    delivered = 0

    def count(sent: Any) -> None:
        nonlocal delivered
        delivered += len(sent)

    emitter = AsyncEmitter(
        base_url,
        batch_size=batch_size,
        max_in_flight=IN_FLIGHT,
        buffer_capacity=batch_size * IN_FLIGHT * 2,
        on_success=count,
    )
    tracker = Tracker(emitter, namespace="bench", app_id="bench")
    for n in range(events):
        await emitter.wait_for_room()
        tracker.track_page_view(
            _url(n), title="Product", referrer="https://search.example", entities=[_entity(n)]
        )
    await emitter.close()
    return delivered


def _run_snowplow(base_url: str, events: int, batch_size: int, *, threads: int | None) -> int:
    from snowplow_tracker.emitters import AsyncEmitter, Emitter  # noqa: PLC0415
    from snowplow_tracker.events.page_view import PageView  # noqa: PLC0415
    from snowplow_tracker.self_describing_json import SelfDescribingJson  # noqa: PLC0415
    from snowplow_tracker.tracker import Tracker  # noqa: PLC0415

    delivered = 0

    def count(sent: Any) -> None:
        nonlocal delivered
        delivered += len(sent)

    if threads is None:
        emitter = Emitter(base_url, batch_size=batch_size, on_success=count)
    else:
        emitter = AsyncEmitter(
            base_url, batch_size=batch_size, on_success=count, thread_count=threads
        )
    tracker = Tracker("bench", emitter, app_id="bench", encode_base64=False)
    for n in range(events):
        entity = _entity(n)
        tracker.track(
            PageView(
                page_url=_url(n),
                page_title="Product",
                referrer="https://search.example",
                context=[SelfDescribingJson(entity["schema"], entity["data"])],
            )
        )
    if threads is None:
        emitter.flush()
    else:
        emitter.sync_flush()
    return delivered


def _child(contender: str, base_url: str, events: int, batch_size: int) -> None:
    # Import outside the timed part, so start-up cost is nobody's throughput.
    if contender == "emitter":
        import tracking_common.emitter  # noqa: F401, PLC0415
    else:
        import snowplow_tracker  # noqa: F401, PLC0415
    start, cpu_start = time.perf_counter(), time.process_time()
    if contender == "emitter":
        # The loop docs/emitter.md recommends for the core (an application's choice; the
        # Snowplow emitters use threads, so they have no loop to choose).
        runner = asyncio.run if os.environ.get("BENCH_EMITTER_LOOP") == "asyncio" else uvloop.run
        delivered = runner(_run_core(base_url, events, batch_size))
    else:
        threads = IN_FLIGHT if contender == "snowplow_async_emitter" else None
        delivered = _run_snowplow(base_url, events, batch_size, threads=threads)
    elapsed, cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {"delivered": delivered, "elapsed_s": elapsed, "cpu_s": cpu_s, "peak_mb": peak_mb}
        )
    )


def _cpu_s(pid: int) -> float:
    """User and system CPU seconds a process has used so far."""
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _call(base_url: str, path: str, method: str = "GET") -> Any:
    request = urllib.request.Request(base_url + path, method=method)  # noqa: S310 - local URL
    with urllib.request.urlopen(request, timeout=5) as response:  # noqa: S310
        return json.loads(response.read() or b"null")


def _start_collector() -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {
        **os.environ,
        "COLLECTOR_PORT": str(port),
        "COLLECTOR_COUNT_ONLY": "true",
        "LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", "from local_collector.main import main; main()"],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            _call(base_url, "/healthz")
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("the local collector did not start") from None
            time.sleep(0.05)
        else:
            return process, base_url


def _run_once(
    process: subprocess.Popen[bytes], base_url: str, contender: str, events: int, batch_size: int
) -> dict[str, float]:
    """One contender's run, checked against the collector's count; its figures."""
    _call(base_url, "/micro/reset", "POST")
    collector_cpu = _cpu_s(process.pid)
    result = run_child(
        "bench.bench_emitter",
        *("--child", contender, "--url", base_url),
        *("--events", str(events), "--batch-size", str(batch_size)),
        timeout_s=300,
    )
    arrived = _call(base_url, "/micro/all")["good"]
    collector_cpu = _cpu_s(process.pid) - collector_cpu
    rate = events / result["elapsed_s"]
    print(
        f"  {contender}: {result['delivered']} reported delivered, {arrived} arrived, "
        f"{result['elapsed_s']:.2f} s, {rate:,.0f} events/s; CPU per event: "
        f"{result['cpu_s'] * 1e6 / events:.1f} us, "
        f"the collector's {collector_cpu * 1e6 / events:.1f} us",
        flush=True,
    )
    if arrived != events or result["delivered"] != events:
        raise SystemExit(f"{contender}: not every event arrived ({arrived})")
    return {"events_per_s": rate, "peak_mem_mb": result["peak_mb"]}


def main() -> None:
    """Alternate the contenders against one collector and record each one's best round."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=EVENTS)
    parser.add_argument("--snowplow-events", type=int, default=SNOWPLOW_EVENTS)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="alternations of all three")
    parser.add_argument("--child", choices=CONTENDERS)
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.url, args.events, args.batch_size)
        return

    from bench.results import ratio_line, record  # noqa: PLC0415

    process, base_url = _start_collector()
    figures = {f"{contender}_events_per_s": 0.0 for contender in CONTENDERS}
    figures.update({f"{contender}_peak_mem_mb": 0.0 for contender in CONTENDERS})
    try:
        for round_ in range(args.rounds):
            print(f"  round {round_ + 1} of {args.rounds}", flush=True)
            for contender in CONTENDERS:
                events = args.events if contender == "emitter" else args.snowplow_events
                run = _run_once(process, base_url, contender, events, args.batch_size)
                for figure, value in run.items():
                    key = f"{contender}_{figure}"
                    figures[key] = max(figures[key], value)
    finally:
        process.terminate()
        process.wait(timeout=10)
    record(figures)
    core = figures["emitter_events_per_s"]
    sync = figures["snowplow_emitter_events_per_s"]
    threaded = figures["snowplow_async_emitter_events_per_s"]
    print(ratio_line("emitter vs snowplow Emitter", core, sync, TARGET_RATIO))
    print(ratio_line("emitter vs snowplow AsyncEmitter", core, threaded, None))
    print(ratio_line("emitter vs the faster of the two", core, max(sync, threaded), TARGET_RATIO))


if __name__ == "__main__":
    main()
