"""``forwarder-service replay``: re-publish dead letters to the events topic.

Reads ``DLQ_TOPIC`` from the beginning up to the end offsets seen at start (records written
meanwhile are left for a later run), with manual assignment and no consumer group, so nothing
is committed and running it twice replays twice. Each dead letter that passes the filters is
produced to ``EVENTS_TOPIC`` with its original key and value, its original headers without the
dead-letter ones, plus ``x-forwarder.replayed-from: <dlq topic>:<partition>:<offset>``, through
an idempotent ``acks=all`` producer; the run fails if any of them is not acknowledged.

Filters: ``--error-class`` (matches ``x-forwarder.error.class`` or
``__connect.errors.exception.class.name``; repeatable), ``--since``/``--until`` (ISO 8601, on
the last failure time, else the record timestamp), ``--limit``. ``--dry-run`` counts what would
be replayed and produces nothing. A progress bar is drawn on stderr; a summary goes to stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from forwarder_service.dead_letter import (
    ERROR_HEADER_PREFIXES,
    H_ERROR_CLASS,
    H_EXCEPTION_CLASS,
    H_LAST_FAILURE_MS,
    H_REPLAYED_FROM,
)
from forwarder_service.errors import ReplayError

__all__ = ["ReplayFilter", "ReplaySummary", "parse_replay_args", "replay"]

logger = logging.getLogger(__name__)

_TIMEOUT_S = 30.0
_CHUNK = 500


def _parse_time(text: str) -> int:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return int(text)


@dataclass(frozen=True, slots=True)
class ReplayFilter:
    """Which dead letters to replay (all of them by default)."""

    error_classes: frozenset[str] = frozenset()
    since_ms: int | None = None
    until_ms: int | None = None

    def matches(self, headers: Sequence[tuple[str, bytes]], timestamp_ms: int) -> bool:
        """True if a dead letter with ``headers`` passes every filter."""
        found = dict(headers)
        if self.error_classes:
            classes = {
                found[name].decode("utf-8", "replace")
                for name in (H_ERROR_CLASS, H_EXCEPTION_CLASS)
                if name in found
            }
            if not classes & self.error_classes:
                return False
        if self.since_ms is None and self.until_ms is None:
            return True
        when = timestamp_ms
        raw = found.get(H_LAST_FAILURE_MS)
        if raw is not None and raw.isdigit():
            when = int(raw)
        if self.since_ms is not None and when < self.since_ms:
            return False
        return self.until_ms is None or when < self.until_ms


@dataclass(slots=True)
class ReplaySummary:
    """What a replay run did."""

    scanned: int = 0
    matched: int = 0
    replayed: int = 0
    dry_run: bool = False
    by_class: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        """One human-readable line."""
        verb = "would replay" if self.dry_run else "replayed"
        count = self.matched if self.dry_run else self.replayed
        classes = ", ".join(f"{k}={v}" for k, v in sorted(self.by_class.items())) or "none"
        return f"scanned {self.scanned} dead letter(s), {verb} {count} (by class: {classes})"


def parse_replay_args(argv: Sequence[str]) -> argparse.Namespace:
    """Parse the ``replay`` sub-command's arguments."""
    parser = argparse.ArgumentParser(
        prog="forwarder-service replay", description="Re-publish dead letters to EVENTS_TOPIC."
    )
    parser.add_argument("--dry-run", action="store_true", help="count, produce nothing")
    parser.add_argument(
        "--error-class", action="append", default=[], help="only this class (repeatable)"
    )
    parser.add_argument("--since", type=_parse_time, help="failed at or after (ISO 8601)")
    parser.add_argument("--until", type=_parse_time, help="failed before (ISO 8601)")
    parser.add_argument("--limit", type=_positive, help="replay at most N records")
    parser.add_argument("--no-progress", action="store_true", help="do not draw the bar")
    return parser.parse_args(list(argv))


class _Progress:
    def __init__(self, total: int, stream: TextIO | None) -> None:
        self._total = max(total, 1)
        self._stream = stream
        self._last = 0.0

    def update(self, done: int, replayed: int, *, final: bool = False) -> None:
        if self._stream is None:
            return
        now = time.monotonic()
        if not final and now - self._last < 0.2:
            return
        self._last = now
        width = 30
        filled = min(width, width * done // self._total)
        bar = "#" * filled + "." * (width - filled)
        self._stream.write(f"\r[{bar}] {done}/{self._total} scanned, {replayed} matched")
        if final:
            self._stream.write("\n")
        self._stream.flush()


async def replay(
    *,
    bootstrap_servers: str,
    dlq_topic: str,
    events_topic: str,
    selection: ReplayFilter,
    dry_run: bool = False,
    limit: int | None = None,
    progress: TextIO | None = None,
    client_options: Mapping[str, Any] | None = None,
) -> ReplaySummary:
    """Replay the dead letters present at start that match ``selection``.

    ``client_options`` are the clients' TLS and SASL options. Raises ReplayError if the topic
    cannot be read or a replayed record is not acknowledged.
    """
    summary = ReplaySummary(dry_run=dry_run)
    security = dict(client_options or {})
    try:
        async with asyncio.timeout(_TIMEOUT_S):
            partitions = await _partitions(bootstrap_servers, dlq_topic, security)
    except (KafkaError, TimeoutError, OSError) as exc:
        raise ReplayError(f"cannot describe {dlq_topic!r}: {exc!r}") from exc
    if not partitions:
        raise ReplayError(f"topic {dlq_topic!r} does not exist or has no partitions")
    tps = [TopicPartition(dlq_topic, p) for p in partitions]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        client_id="tracking-forwarder-replay",
        **security,
    )
    producer = None
    try:
        async with asyncio.timeout(_TIMEOUT_S):
            await consumer.start()
            consumer.assign(tps)
            begin = await consumer.beginning_offsets(tps)
            end = await consumer.end_offsets(tps)
            await consumer.seek_to_beginning(*tps)
        if not dry_run:
            producer = AIOKafkaProducer(
                bootstrap_servers=bootstrap_servers,
                enable_idempotence=True,
                acks="all",
                linger_ms=5,
                compression_type="zstd",  # as the API writes (docs/decisions.md)
                client_id="tracking-forwarder-replay",
                **security,
            )
            async with asyncio.timeout(_TIMEOUT_S):
                await producer.start()
        total = sum(end[tp] - begin[tp] for tp in tps)
        bar = _Progress(total, progress)
        await _copy(
            consumer=consumer,
            producer=producer,
            tps=tps,
            end=end,
            events_topic=events_topic,
            selection=selection,
            limit=limit,
            summary=summary,
            bar=bar,
        )
        bar.update(summary.scanned, summary.matched, final=True)
    except (KafkaError, TimeoutError, OSError) as exc:
        raise ReplayError(f"replay failed: {exc!r}") from exc
    finally:
        await _close(consumer, producer)
    return summary


async def _partitions(bootstrap_servers: str, topic: str, security: Mapping[str, Any]) -> list[int]:
    """The partition ids of ``topic`` (empty if it does not exist).

    A group-less consumer only knows the metadata of topics it was assigned, so an admin
    client asks the cluster.
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id="tracking-forwarder-replay", **security
    )
    await admin.start()
    try:
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    found = [entry for entry in described if entry.get("topic") == topic]
    if not found or found[0].get("error_code"):
        return []
    return sorted(int(p["partition"]) for p in found[0].get("partitions", ()))


async def _copy(
    *,
    consumer: AIOKafkaConsumer,
    producer: AIOKafkaProducer | None,
    tps: list[TopicPartition],
    end: dict[TopicPartition, int],
    events_topic: str,
    selection: ReplayFilter,
    limit: int | None,
    summary: ReplaySummary,
    bar: _Progress,
) -> None:
    remaining = {tp for tp in tps if end[tp] > 0}
    pending: list[Any] = []
    while remaining:
        if limit is not None and summary.matched >= limit:
            break
        for tp in list(remaining):
            if await consumer.position(tp) >= end[tp]:
                remaining.discard(tp)
        if not remaining:
            break
        async with asyncio.timeout(_TIMEOUT_S):
            batches = await consumer.getmany(*remaining, timeout_ms=500, max_records=_CHUNK)
        for tp, records in batches.items():
            for record in records:
                if record.offset >= end[tp] or (limit is not None and summary.matched >= limit):
                    continue
                summary.scanned += 1
                headers = list(record.headers or ())
                if not selection.matches(headers, record.timestamp):
                    continue
                summary.matched += 1
                found = dict(headers)
                cls = found.get(H_ERROR_CLASS) or found.get(H_EXCEPTION_CLASS) or b"unknown"
                name = cls.decode("utf-8", "replace")
                summary.by_class[name] = summary.by_class.get(name, 0) + 1
                if producer is None:
                    continue
                kept = [(k, v) for k, v in headers if not k.startswith(ERROR_HEADER_PREFIXES)]
                origin = f"{record.topic}:{record.partition}:{record.offset}".encode()
                pending.append(
                    await producer.send(
                        events_topic,
                        value=record.value,
                        key=record.key,
                        headers=[*kept, (H_REPLAYED_FROM, origin)],
                    )
                )
        if len(pending) >= _CHUNK:
            summary.replayed += await _acknowledged(pending)
        bar.update(summary.scanned, summary.matched)
    summary.replayed += await _acknowledged(pending)


async def _acknowledged(pending: list[Any]) -> int:
    if not pending:
        return 0
    async with asyncio.timeout(_TIMEOUT_S):
        await asyncio.gather(*pending)
    count = len(pending)
    pending.clear()
    return count


async def _close(consumer: AIOKafkaConsumer, producer: AIOKafkaProducer | None) -> None:
    for client in (producer, consumer):
        if client is None:
            continue
        try:
            async with asyncio.timeout(_TIMEOUT_S):
                await client.stop()
        except (KafkaError, TimeoutError, OSError) as exc:
            logger.warning("replay client did not close cleanly: %r", exc)


async def run_replay(args: argparse.Namespace, settings: Any) -> int:
    """Run the sub-command with parsed ``args``; return the exit code."""
    selection = ReplayFilter(
        error_classes=frozenset(args.error_class), since_ms=args.since, until_ms=args.until
    )
    try:
        summary = await replay(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            dlq_topic=settings.dlq_topic,
            events_topic=settings.events_topic,
            selection=selection,
            dry_run=args.dry_run,
            limit=args.limit,
            progress=None if args.no_progress else sys.stderr,
            client_options=settings.client_options(),
        )
    except ReplayError as exc:
        print(f"replay failed: {exc}", file=sys.stderr)
        return 1
    print(summary.line())
    return 0
