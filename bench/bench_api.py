"""API throughput and latency against baselines the project does not control.

One run starts ``api-service`` as a subprocess (fresh 3-partition topics, the rate limit off,
``API_BENCH_NOOP_ENDPOINT=true``) and drives it with wrk (C, one thread: the server needs the
other core) through ``bench/api_wrk.lua``:

- ``noop_single_rps``: ``POST /bench/noop`` with one page view (auth, read, parse: our own
  request layer);
- ``api_single_rps`` and its p50/p99 latency: ``POST /v1/events`` with one page view;
- ``api_batch_events_per_s`` and its p50/p99: ``POST /v1/events`` with 100 page views.

A 5-second run of the raw producer first warms a freshly started broker up (not measured).

The same wrk script, body and connections drive two baselines, each in its own process on
uvicorn with the API's settings (``bench.baseline_server``):

- ``bare_asgi_rps``: a bare ASGI callable that reads the body (``bench.bare_asgi``);
- ``fastapi_min_rps``: a minimal FastAPI route that reads the body (``bench.fastapi_min``).

And ``raw_producer_events_per_s``: aiokafka alone, in its own process, producing the records
the API builds for the batch with the API's producer settings, the faster of ``send`` and
``create_batch``/``send_batch`` (``bench.raw_producer``; both figures are recorded). Every
topic must hold at least as many records as were acknowledged.

Every figure is measured in ``--rounds`` rounds (3) of ``--duration`` seconds (6), one
after the other, and its best round is kept, with the latency and CPU of that round: the
machine is shared, and a run's share of a core moved single figures by 1.5x between minutes.
Within a round each ratio's two sides are measured next to each other (the bare ASGI app just
before single events, the raw producer just after batches), so that a round sees both in the
same phase of the host.

    uv run python -m bench.bench_api [--duration 6] [--rounds 3] [--connections 48]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.baseline_server import running, served
from bench.child import run_child
from bench.payloads import BATCH_SIZE, batch_events, page_view
from scripts.kafka.security import client_options_from_env

HERE = Path(__file__).resolve().parent
WRK_SCRIPT = HERE / "api_wrk.lua"
API_KEY = "bench-key-0123456789abcdef"
PARTITIONS = 3


# -- wrk ----------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    """The wrk binary; installed from the distribution's packages when missing and we may."""
    found = shutil.which("wrk")
    if found:
        return found
    apt = shutil.which("apt-get")
    if apt and os.geteuid() == 0:
        print("  wrk is missing: installing it with apt-get ...", flush=True)
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run([apt, "update", "-qq"], check=False, env=env)  # noqa: S603
        subprocess.run([apt, "install", "-y", "-qq", "wrk"], check=False, env=env)  # noqa: S603
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit(
        "bench_api needs the wrk load generator (https://github.com/wg/wrk): install it, "
        "e.g. 'apt-get install wrk' or 'brew install wrk', and run again"
    )


def run_wrk(
    wrk: str, url: str, body: Path, *, connections: int, duration_s: float
) -> dict[str, float]:
    """One wrk run; its summary (requests, errors, latency percentiles in microseconds)."""
    env = {**os.environ, "BENCH_BODY_FILE": str(body), "BENCH_API_KEY": API_KEY}
    command = [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(WRK_SCRIPT),
        url,
    ]
    output = subprocess.run(  # noqa: S603 - wrk with our own arguments
        command, check=True, capture_output=True, env=env, timeout=duration_s + 60
    ).stdout.decode()
    for line in output.splitlines():
        if line.startswith("BENCH_JSON "):
            summary: dict[str, float] = json.loads(line.removeprefix("BENCH_JSON "))
            return summary
    raise RuntimeError(f"wrk printed no summary:\n{output}")


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process has used so far; 0 where /proc is missing."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    wrk: str,
    url: str,
    body: Path,
    *,
    connections: int,
    duration_s: float,
    label: str,
    server_pid: int,
) -> dict[str, float]:
    """A short warm-up, then the measured run; the summary plus ``rps``, ``ok`` answers and
    ``cpu_us`` (the server's CPU time per answer: steadier than rates on a busy host)."""
    run_wrk(wrk, url, body, connections=connections, duration_s=2)
    cpu_before = cpu_seconds(server_pid)
    summary = run_wrk(wrk, url, body, connections=connections, duration_s=duration_s)
    cpu_used = cpu_seconds(server_pid) - cpu_before
    errors = {
        name: int(summary[name])
        for name in ("status_errors", "connect_errors", "read_errors", "write_errors", "timeouts")
        if summary[name]
    }
    summary["ok"] = summary["requests"] - summary["status_errors"]
    summary["rps"] = summary["ok"] / (summary["duration_us"] / 1e6)
    summary["cpu_us"] = cpu_used * 1e6 / max(summary["requests"], 1)
    print(
        f"  {label}: {summary['rps']:,.0f} ok answers/s, p50 {summary['p50_us'] / 1000:.2f} ms, "
        f"p99 {summary['p99_us'] / 1000:.2f} ms, server CPU {summary['cpu_us']:.0f} us/request"
        + (f", errors {errors}" if errors else ""),
        flush=True,
    )
    if summary["ok"] <= 0:
        raise SystemExit(f"{label}: no request succeeded ({errors})")
    return summary


# -- Kafka --------------------------------------------------------------------------------------


@contextmanager
def kafka() -> Iterator[str]:
    """A broker's bootstrap address: ``KAFKA_BOOTSTRAP_SERVERS`` if it answers, else our own."""
    from scripts.kafka.broker import DEFAULT_BOOTSTRAP, KafkaBroker, answers, free_port  # noqa: PLC0415

    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP)
    if answers(bootstrap, options=client_options_from_env()):
        yield bootstrap
        return
    print(f"  no broker at {bootstrap}: starting one for this run ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-kafka-") as workdir:
        broker = KafkaBroker(Path(workdir), f"127.0.0.1:{free_port()}")
        broker.start()
        try:
            yield broker.bootstrap
        finally:
            broker.stop()


async def create_topics(bootstrap: str, names: list[str]) -> None:
    """Create the topics (``PARTITIONS`` each) and wait until every partition has a leader."""
    from aiokafka import AIOKafkaProducer  # noqa: PLC0415
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # noqa: PLC0415

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, **client_options_from_env())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, PARTITIONS, 1) for name in names])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, **client_options_from_env())
    await producer.start()
    try:
        async with asyncio.timeout(30):
            for name in names:
                while True:
                    if len(await producer.partitions_for(name) or ()) == PARTITIONS:
                        break
                    await asyncio.sleep(0.05)
    finally:
        await producer.stop()


async def end_offsets(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds (the sum of its partitions' end offsets)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition  # noqa: PLC0415

    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, **client_options_from_env()
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        offsets = await consumer.end_offsets(partitions)
        return sum(offsets.values())
    finally:
        await consumer.stop()


# -- the API ----------------------------------------------------------------------------------


@contextmanager
def api_service(bootstrap: str, topics: dict[str, str]) -> Iterator[tuple[str, int]]:
    """A running ``api-service`` subprocess, ready; its base URL and process id."""
    from scripts.kafka.broker import free_port  # noqa: PLC0415

    port, admin_port = free_port(), free_port()
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "EVENTS_TOPIC": topics["events"],
        "BAD_EVENTS_TOPIC": topics["bad"],
        "DLQ_TOPIC": topics["dlq"],
        "API_HOST": "127.0.0.1",
        "API_PORT": str(port),
        "API_ADMIN_HOST": "127.0.0.1",
        "API_ADMIN_PORT": str(admin_port),
        "API_KEYS": API_KEY,
        "API_RATE_LIMIT_PER_S": "0",
        "API_BENCH_NOOP_ENDPOINT": "true",
        "API_DRAIN_GRACE_S": "0",
        "LOG_LEVEL": "WARNING",
    }
    base_url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "api_service.main"]
    with served(command, base_url + "/readyz", env=env, ready=lambda status: status == 200) as pid:
        yield base_url, pid


# -- the run ------------------------------------------------------------------------------------


def raw_producer(
    bootstrap: str, topic: str, duration_s: float, window: int, *, quiet: bool = False
) -> dict[str, float]:
    """``bench.raw_producer`` in a process of its own: events/s of each way."""
    ways = run_child(
        "bench.raw_producer",
        *("--bootstrap", bootstrap, "--topic", topic),
        *("--duration", str(duration_s), "--window", str(window)),
        timeout_s=2 * duration_s + 120,
    )
    stored = asyncio.run(end_offsets(bootstrap, topic))
    produced = sum(int(way["events"]) for way in ways.values())
    if stored < produced:
        raise SystemExit(f"raw producer: {produced} acknowledged, {stored} stored")
    rates = {name: way["events"] / way["elapsed_s"] for name, way in ways.items()}
    for name, rate in rates.items():
        if not quiet:
            print(f"  raw producer ({name}): {rate:,.0f} events/s", flush=True)
    return rates


def measure_round(
    wrk: str, bootstrap: str, topics: dict[str, str], bodies: dict[str, Path], args: Any
) -> dict[str, dict[str, float]]:
    """One round: each API figure next to its baseline (the bare ASGI app, then single events;
    batches, then the raw producer), the no-op route and the minimal FastAPI route between."""
    from scripts.kafka.broker import free_port  # noqa: PLC0415

    options: dict[str, Any] = {"connections": args.connections, "duration_s": args.duration}
    single_body, batch_body = bodies["single"], bodies["batch"]
    stored_before = asyncio.run(end_offsets(bootstrap, topics["events"]))
    found: dict[str, dict[str, float]] = {}
    baselines = {"bare ASGI": "bench.bare_asgi", "FastAPI": "bench.fastapi_min"}

    def baseline(name: str) -> None:
        with running(baselines[name], free_port()) as (base, baseline_pid):
            found[name] = measure(
                wrk, base + "/v1/events", single_body, label=name, server_pid=baseline_pid,
                **options,
            )  # fmt: skip

    baseline("bare ASGI")
    with api_service(bootstrap, topics) as (base_url, pid):
        url = base_url + "/v1/events"
        found["single"] = measure(wrk, url, single_body, label="single", server_pid=pid, **options)
        found["noop"] = measure(
            wrk, base_url + "/bench/noop", single_body, label="noop", server_pid=pid, **options
        )
        found["batch"] = measure(
            wrk, url, batch_body, label=f"batch of {BATCH_SIZE}", server_pid=pid, **options
        )
    stored = asyncio.run(end_offsets(bootstrap, topics["events"])) - stored_before
    acknowledged = int(found["single"]["ok"] + found["batch"]["ok"] * BATCH_SIZE)
    print(f"  events topic got {stored:,} records; {acknowledged:,} acknowledged (measured)")
    if stored < acknowledged:
        raise SystemExit("the events topic holds fewer records than the API acknowledged")
    found["raw"] = raw_producer(bootstrap, topics["raw"], args.duration, args.connections)
    baseline("FastAPI")
    return found


def best_of(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, float]]:
    """Per figure, the round where it was fastest (its latency and CPU come with it); the raw
    producer's two ways each at their best."""
    best = {
        name: max((found[name] for found in rounds), key=lambda summary: summary["rps"])
        for name in rounds[0]
        if name != "raw"
    }
    best["raw"] = {way: max(found["raw"][way] for found in rounds) for way in rounds[0]["raw"]}
    return best


def main() -> None:
    """Measure the API and its baselines; record and print the figures and ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=6.0, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, the best of each kept")
    parser.add_argument("--connections", type=int, default=48)
    args = parser.parse_args()

    from bench.results import ratio_line, record  # noqa: PLC0415

    wrk = ensure_wrk()
    run = uuid.uuid4().hex[:8]
    kinds = ("events", "bad", "dlq", "raw", "warmup")
    topics = {kind: f"bench_api_{kind}_{run}" for kind in kinds}
    with kafka() as bootstrap, tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        asyncio.run(create_topics(bootstrap, list(topics.values())))
        # A broker started moments ago still compiles its hot paths (JIT) on the cores the API
        # needs; its first seconds of load made even the no-op route 1.7x dearer. Warm it up.
        print("  warming the broker up (raw producer, 5 s, not measured) ...", flush=True)
        raw_producer(bootstrap, topics["warmup"], 5.0, args.connections, quiet=True)
        bodies = {"single": Path(tmp) / "single.json", "batch": Path(tmp) / "batch.json"}
        bodies["single"].write_text(json.dumps(page_view(1)))
        bodies["batch"].write_text(json.dumps({"events": batch_events()}))
        rounds = []
        for number in range(args.rounds):
            print(f"  round {number + 1} of {args.rounds}", flush=True)
            rounds.append(measure_round(wrk, bootstrap, topics, bodies, args))
    best = best_of(rounds)
    noop, single, batch, raw = best["noop"], best["single"], best["batch"], best["raw"]
    baselines = {name: best[name] for name in ("bare ASGI", "FastAPI")}
    raw_rate = max(raw.values())
    figures = {
        "noop_single_rps": noop["rps"],
        "api_single_rps": single["rps"],
        "api_single_p50_ms": single["p50_us"] / 1000,
        "api_single_p99_ms": single["p99_us"] / 1000,
        "api_batch_events_per_s": batch["rps"] * BATCH_SIZE,
        "api_batch_p50_ms": batch["p50_us"] / 1000,
        "api_batch_p99_ms": batch["p99_us"] / 1000,
        "bare_asgi_rps": baselines["bare ASGI"]["rps"],
        "fastapi_min_rps": baselines["FastAPI"]["rps"],
        "raw_producer_events_per_s": raw_rate,
        "raw_producer_send_events_per_s": raw["send"],
        "raw_producer_batch_events_per_s": raw["batch"],
        "noop_cpu_us_per_request": noop["cpu_us"],
        "api_single_cpu_us_per_request": single["cpu_us"],
        "api_batch_cpu_us_per_event": batch["cpu_us"] / BATCH_SIZE,
        "bare_asgi_cpu_us_per_request": baselines["bare ASGI"]["cpu_us"],
        "fastapi_min_cpu_us_per_request": baselines["FastAPI"]["cpu_us"],
    }
    record(figures)
    for label, numerator, denominator, target in (
        ("API single vs bare ASGI (requests/s)", single["rps"], figures["bare_asgi_rps"], 0.2),
        ("API single vs minimal FastAPI", single["rps"], figures["fastapi_min_rps"], None),
        ("API single vs its no-op route", single["rps"], noop["rps"], None),
        ("API batch vs raw producer (events/s)", figures["api_batch_events_per_s"], raw_rate, 0.5),
    ):
        print(ratio_line(label, numerator, denominator, target))


if __name__ == "__main__":
    main()
