"""``tracking-produce``: JSON lines of events from files or standard input, produced as the API
produces them.

    tracking-produce [FILE ...] [--tracker-protocol] [--dry-run] [--rejects FILE]
                     [--batch-size N] [--rate EVENTS_PER_S] [--bootstrap-servers HOST:PORT]
                     [--topic NAME] [--iglu-schema-dir DIR] [--iglu-resolver-config FILE]

Each line is a ``/v1`` event (or, with ``--tracker-protocol``, a tracker-protocol payload);
lines are checked and produced ``--batch-size`` at a time through
:class:`~tracking_producer.producer.EventProducer`. Valid lines are produced and invalid ones
reported; once Kafka fails a batch, later valid lines are reported as not produced rather than
each waiting out the deadline. Exit codes: 0 every line produced (in a dry run: valid),
1 some lines rejected or not produced, 2 bad arguments or configuration.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tracking_common.errors import ValidationIssue
from tracking_common.settings import SettingsError

from tracking_producer.cli_settings import ProduceSettings, load_produce_settings
from tracking_producer.errors import (
    KafkaRefusedError,
    NotProducedError,
    ProducerError,
    SchemasUnavailableError,
)
from tracking_producer.lines import STDIN, Line, Pacer, parse, read_ahead
from tracking_producer.producer import EventProducer
from tracking_producer.report import EXIT_INCOMPLETE, EXIT_USAGE, Report

__all__ = ["main", "parse_args", "run"]

logger = logging.getLogger("tracking_producer.cli")

# Flag -> the settings field it overrides (its environment variable's name, lower case).
OVERRIDES = {
    "bootstrap_servers": "kafka_bootstrap_servers",
    "topic": "events_topic",
    "iglu_schema_dir": "iglu_schema_dir",
    "iglu_resolver_config": "iglu_resolver_config",
    "timeout": "api_produce_timeout_s",
}


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def _rate(value: str) -> float:
    number = float(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 (no limit) or more")
    return number


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The arguments; a usage error exits with code 2 (argparse's)."""
    parser = argparse.ArgumentParser(
        prog="tracking-produce",
        description="Produce tracking events (JSON lines) to Kafka, checked as the API checks "
        "them. Exit codes: 0 all produced, 1 some lines rejected or not produced, 2 usage or "
        "configuration error.",
    )
    parser.add_argument("files", nargs="*", default=[STDIN], help="JSON lines files (- = stdin)")
    parser.add_argument(
        "--tracker-protocol",
        action="store_true",
        help="lines are Snowplow tracker-protocol payloads (payload_data items), not /v1 events",
    )
    parser.add_argument("--dry-run", action="store_true", help="check only; produce nothing")
    parser.add_argument(
        "--rejects", type=Path, help="write rejected lines with their errors here (JSON lines)"
    )
    parser.add_argument("--batch-size", type=_positive, default=500, help="events per batch")
    parser.add_argument("--rate", type=_rate, default=0.0, help="most events a second (0: none)")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="a progress line on stderr (default: when stderr is a terminal)",
    )
    kafka = parser.add_argument_group("Kafka and Iglu (override the environment variables)")
    kafka.add_argument("--bootstrap-servers", help="KAFKA_BOOTSTRAP_SERVERS")
    kafka.add_argument("--topic", help="EVENTS_TOPIC")
    kafka.add_argument("--iglu-schema-dir", type=Path, help="IGLU_SCHEMA_DIR")
    kafka.add_argument("--iglu-resolver-config", type=Path, help="IGLU_RESOLVER_CONFIG")
    kafka.add_argument("--timeout", type=float, help="API_PRODUCE_TIMEOUT_S")
    return parser.parse_args(argv)


def producer_for(settings: ProduceSettings, batch_size: int) -> EventProducer:
    """The library's producer for ``settings``."""
    return EventProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic=settings.events_topic,
        produce_timeout_s=settings.api_produce_timeout_s,
        linger_ms=settings.api_producer_linger_ms,
        compression=settings.api_producer_compression,
        buffer_bytes=settings.api_producer_buffer_bytes,
        security=settings,
        iglu_schema_dir=settings.iglu_schema_dir,
        iglu_resolver_config=settings.iglu_resolver_config,
        iglu_resolve_timeout_s=settings.iglu_resolve_timeout_s,
        allow_unknown_schemas=settings.api_allow_unknown_schemas,
        max_event_bytes=settings.api_max_event_bytes,
        max_json_depth=settings.api_max_json_depth,
        batch_size=batch_size,
        client_id="tracking-produce",
    )


async def run(args: argparse.Namespace, producer: EventProducer, report: Report) -> int:
    """Check and produce every line of ``args.files`` with ``producer``; the exit code."""
    pacer = Pacer(args.rate)
    # With a low rate, a batch holds at most a second of events, so the pace stays even.
    size = min(args.batch_size, max(1, int(args.rate))) if args.rate else args.batch_size
    kafka_failure: str | None = None
    try:
        if not args.dry_run:
            await producer.start()
        async for lines in read_ahead(args.files, size):
            events, readable = _parsed(lines, report)
            try:
                checked = await producer.check(events, tracker_protocol=args.tracker_protocol)
            except SchemasUnavailableError as error:  # a registry is down: nothing was checked
                report.fail(readable, str(error))
                continue
            for rejection in checked.rejections:
                report.reject(readable[rejection.index], rejection.issues)
            valid = [readable[i] for i, eid in enumerate(checked.event_ids) if eid is not None]
            if args.dry_run:
                report.valid += len(valid)
            elif kafka_failure is not None:
                report.fail(valid, f"not attempted after Kafka failed ({kafka_failure})")
            else:
                await pacer.take(len(valid))
                try:
                    await producer.produce(checked)
                except NotProducedError as error:
                    kafka_failure = str(error)
                    report.fail(valid, kafka_failure)
                except asyncio.CancelledError:  # Ctrl-C: these may or may not have landed
                    report.fail(valid, "interrupted before Kafka acknowledged")
                    raise
                except KafkaRefusedError as error:  # a configuration error: stop here
                    report.fail(valid, str(error))
                    raise
                else:
                    report.produced += len(valid)
            report.draw()
    finally:
        await producer.stop()
        report.draw(final=True)
    return report.exit_code


def _parsed(lines: list[Line], report: Report) -> tuple[list[Any], list[Line]]:
    """The JSON values of ``lines`` and the lines they came from; the rest rejected."""
    events: list[Any] = []
    readable: list[Line] = []
    for line in lines:
        value = parse(line)
        if isinstance(value, ValidationIssue):
            report.reject(line, [value])
        else:
            events.append(value)
            readable.append(line)
    return events, readable


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tracking-produce`` console script."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="tracking-produce: %(message)s")
    # aiokafka logs each failed connection attempt at ERROR; the summary says what failed.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    overrides = {
        field: getattr(args, flag)
        for flag, field in OVERRIDES.items()
        if getattr(args, flag) is not None
    }
    try:
        settings = load_produce_settings(**overrides)
        producer = producer_for(settings, args.batch_size)
    except (SettingsError, ValueError) as error:
        print(f"tracking-produce: {error}", file=sys.stderr)
        return EXIT_USAGE
    show = sys.stderr.isatty() if args.progress is None else args.progress
    try:
        rejects = args.rejects.open("wb") if args.rejects is not None else None
    except OSError as error:
        print(f"tracking-produce: --rejects: {error}", file=sys.stderr)
        return EXIT_USAGE
    report = Report(rejects=rejects, progress=sys.stderr if show else None)
    try:
        code = asyncio.run(run(args, producer, report))
    except (OSError, ProducerError) as error:  # an unreadable file, credentials Kafka refuses
        print(report.summary(dry_run=args.dry_run), file=sys.stderr)
        print(f"tracking-produce: {error}; the lines after these were not read", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(report.summary(dry_run=args.dry_run), file=sys.stderr)
        print("tracking-produce: interrupted: the lines after these were not read", file=sys.stderr)
        return EXIT_INCOMPLETE
    finally:
        if rejects is not None:
            rejects.close()
    print(report.summary(dry_run=args.dry_run), file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
