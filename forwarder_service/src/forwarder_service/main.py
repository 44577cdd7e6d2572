"""``forwarder-service``: the composition root.

``forwarder-service`` (or ``forwarder-service run``) consumes ``EVENTS_TOPIC`` and forwards to
the collector until SIGTERM/SIGINT. ``forwarder-service replay ...`` re-publishes dead letters
(see :mod:`forwarder_service.replay`).

Shutdown: the first SIGTERM/SIGINT stops fetching, then waits up to
``FORWARDER_SHUTDOWN_TIMEOUT_S`` from the signal (less a reserve for closing: 5 s, or a
quarter of a shorter timeout) for every taken record to be delivered or dead-lettered,
commits the settled watermark and closes, each closing step bounded by what is left. A
second signal, or the deadline, cuts the wait short: events still undelivered are abandoned
and not committed, so they are read again by whoever owns the partition next.

Before any Kafka client starts, one connection checks that the brokers accept the configured
TLS and SASL settings: a refusal (wrong password, untrusted or mismatched certificate) exits 2
naming the setting; a broker that does not answer is left to the consumer's start, as before.

Exit codes: 0 clean, 1 fatal (dead-letter topic or Kafka consumer failed), 2 bad
configuration (including credentials or certificates Kafka refuses), 3 shut down with
undelivered work (left uncommitted).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Hashable, Sequence
from typing import Any

import uvloop
from tracking_common.gc_tuning import tune_gc
from tracking_common.kafka_security import KafkaSecurityError
from tracking_common.observability import Telemetry, configure_logging, configure_telemetry
from tracking_common.settings import SettingsError

from forwarder_service.admin import AdminServer
from forwarder_service.backpressure import BacklogBound, FlowGate
from forwarder_service.batch_records import use_batch_records
from forwarder_service.consumer import ForwarderConsumer, check_kafka_access, consumer_options
from forwarder_service.dead_letter import KafkaDeadLetterSink
from forwarder_service.errors import FatalForwarderError
from forwarder_service.metrics import ForwarderMetrics
from forwarder_service.offsets import OffsetTracker
from forwarder_service.pipeline import Pipeline
from forwarder_service.readiness import Readiness
from forwarder_service.replay import parse_replay_args, run_replay
from forwarder_service.settings import ForwarderSettings, load_settings
from forwarder_service.sink import build_sink, setup_statuses

__all__ = ["main", "serve"]

logger = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FATAL = 1
EXIT_CONFIG = 2
EXIT_UNDRAINED = 3

_CLOSE_RESERVE_S = 5.0
_MIN_STEP_S = 0.5


class _Signals:
    """First signal: stop fetching and drain. Second: stop draining."""

    def __init__(self, consumer: ForwarderConsumer) -> None:
        self.stop = asyncio.Event()
        self.force = asyncio.Event()
        self.received_at: float | None = None  # loop time of the first signal
        self._consumer = consumer

    def install(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._received, signum)

    def uninstall(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)

    def _received(self, signum: int) -> None:
        if self.stop.is_set():
            logger.warning("second %s: abandoning undelivered work", signal.Signals(signum).name)
            self.force.set()
            return
        logger.info("%s: stopping fetching and draining", signal.Signals(signum).name)
        self.received_at = asyncio.get_running_loop().time()
        self.stop.set()
        self._consumer.stop_fetching()


async def _drain_or_force(pipeline: Pipeline, timeout_s: float, force: asyncio.Event) -> bool:
    drain = asyncio.create_task(pipeline.drain(None, timeout_s=timeout_s))
    forced = asyncio.create_task(force.wait())
    await asyncio.wait({drain, forced}, return_when=asyncio.FIRST_COMPLETED)
    forced.cancel()
    if not drain.done():
        drain.cancel()
    results = await asyncio.gather(drain, forced, return_exceptions=True)
    return results[0] is True


async def _accepted_options(settings: ForwarderSettings) -> dict[str, Any] | None:
    """The TLS/SASL client options, or None (logged) if a broker refuses them."""
    security = settings.client_options()
    try:
        await check_kafka_access(settings, security)
    except KafkaSecurityError as refusal:
        logger.critical("kafka refuses this client: %s", refusal)
        print(f"tracking-forwarder: Kafka refused this client: {refusal}", file=sys.stderr)
        return None
    logger.info("kafka security: %s", settings.describe_security())
    return security


async def _replay(args: argparse.Namespace, settings: ForwarderSettings) -> int:
    if await _accepted_options(settings) is None:
        return EXIT_CONFIG
    return await run_replay(args, settings)


def _observe(
    metrics: ForwarderMetrics, readiness: Readiness, pipeline: Pipeline, settings: ForwarderSettings
) -> None:
    """Point the gauges at their sources and export the counters at 0."""
    metrics.gauges.ready = readiness.ready
    metrics.gauges.backlog_source = pipeline.backlog
    metrics.gauges.oldest_undelivered_age_s = pipeline.oldest_undelivered_age_s
    metrics.start_at_zero(setup_statuses=setup_statuses(settings))


async def serve(settings: ForwarderSettings, telemetry: Telemetry) -> int:
    """Run the forwarder until a signal or a fatal error; return the exit code."""
    if (security := await _accepted_options(settings)) is None:
        return EXIT_CONFIG
    metrics = ForwarderMetrics()
    tracker: OffsetTracker[Hashable] = OffsetTracker()
    dead_letters = KafkaDeadLetterSink(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic=settings.dlq_topic,
        timeout_s=settings.forwarder_dlq_timeout_s,
        producer_options=security,
    )
    pipeline = Pipeline(tracker=tracker, dead_letters=dead_letters, metrics=metrics)
    sink = build_sink(settings, listener=pipeline)
    pipeline.bind(sink)
    gate = FlowGate(
        BacklogBound(
            max_events=settings.forwarder_max_backlog_events,
            max_bytes=settings.forwarder_max_backlog_bytes,
            resume_ratio=settings.forwarder_resume_ratio,
        )
    )
    consumer = ForwarderConsumer(
        settings=settings,
        pipeline=pipeline,
        gate=gate,
        metrics=metrics,
        options=consumer_options(settings),
    )

    readiness = Readiness(
        {
            "consumer_joined": lambda: consumer.ready,
            "dead_letter_producer": lambda: dead_letters.healthy,
            "pipeline": lambda: pipeline.failure is None,
            "collector_setup": lambda: not sink.setup_failing,
        }
    )
    _observe(metrics, readiness, pipeline, settings)
    admin = AdminServer(
        host=settings.forwarder_admin_host,
        port=settings.forwarder_admin_port,
        checks=readiness.checks,
        metrics_text=telemetry.metrics_text,
    )
    signals = _Signals(consumer)
    signals.install()
    exit_code = EXIT_OK
    fatal = False
    try:
        await admin.start()
        await dead_letters.start()
        await sink.start()
        await pipeline.start()
        await consumer.start()
        logger.info(
            "forwarding %s -> %s (group %s, backlog bound %d events / %d bytes, ~%d MB RSS)",
            settings.events_topic,
            settings.collector_url,
            settings.forwarder_group_id,
            settings.forwarder_max_backlog_events,
            settings.forwarder_max_backlog_bytes,
            settings.memory_bound_mb,
        )
        await consumer.run()
    except FatalForwarderError as exc:
        logger.critical("fatal: %s", exc)
        exit_code, fatal = EXIT_FATAL, True
    finally:
        consumer.stop_fetching()
        # The whole shutdown fits in FORWARDER_SHUTDOWN_TIMEOUT_S from the first signal: the
        # drain gets it less a reserve, each closing step what is left (at least a moment).
        loop = asyncio.get_running_loop()
        timeout_s = settings.forwarder_shutdown_timeout_s
        deadline = (signals.received_at or loop.time()) + timeout_s

        def left(cap_s: float) -> float:
            return max(_MIN_STEP_S, min(cap_s, deadline - loop.time()))

        budget = max(0.0, deadline - loop.time() - min(_CLOSE_RESERVE_S, timeout_s / 4))
        drained = False
        if not fatal and not signals.force.is_set():
            drained = await _drain_or_force(pipeline, budget, signals.force)
        if not drained and exit_code == EXIT_OK:
            exit_code = EXIT_UNDRAINED
            logger.warning(
                "shutting down with %d undelivered record(s); they stay uncommitted",
                tracker.outstanding(),
            )
        await sink.close(timeout_s=left(1.0))
        await pipeline.stop()
        await consumer.commit(timeout_s=left(10.0))
        await consumer.close(timeout_s=left(10.0))
        await dead_letters.stop(timeout_s=left(settings.forwarder_dlq_timeout_s))
        await admin.stop()
        signals.uninstall()
        logger.info("stopped (exit code %d)", exit_code)
    return exit_code


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point."""
    args = list(sys.argv[1:] if argv is None else argv)
    command = args.pop(0) if args and not args[0].startswith("-") else "run"
    if command not in {"run", "replay"}:
        print(f"unknown command {command!r}; use 'run' or 'replay'", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(str(exc), file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    configure_logging(settings.log_level, service="tracking-forwarder")
    if command == "replay":
        replay_args = parse_replay_args(args)
        sys.exit(uvloop.run(_replay(replay_args, settings)))
    if args:
        print(f"unexpected arguments: {args}", file=sys.stderr)
        sys.exit(EXIT_CONFIG)
    telemetry = configure_telemetry("tracking-forwarder")
    tune_gc(gen0_threshold=settings.young_gc_threshold)
    use_batch_records()  # no ConsumerRecord per record (forwarder_service.batch_records)
    try:
        # uvloop: the loop's own work (select, transports, handles) is a share of every
        # record's cost, and uvloop does it in C (see docs/forwarder.md, "Performance").
        code = uvloop.run(serve(settings, telemetry))
    finally:
        with contextlib.suppress(Exception):
            telemetry.shutdown()
    sys.exit(code)
