"""The Kafka side: the consumer loop, offset commits, pausing and rebalances (aiokafka).

Delivery guarantee (at least once): the loop hands records to the
:class:`~forwarder_service.pipeline.Pipeline` and commits, per partition, only the watermark the
:class:`~forwarder_service.offsets.OffsetTracker` offers: one past the highest offset below which
every record was delivered (2xx) or acknowledged by the dead-letter topic. Commits happen as
soon as the watermark advances, at most once per ``commit_interval_s`` (1 s), and at once on
revoke and on shutdown, only for partitions this instance is assigned. After a crash, a
rebalance or a timed-out request, records at or above the committed offset are read again:
duplicates are possible (downstream deduplicates on ``eid``), loss is not.

aiokafka traps handled here:

- Auto-commit commits what was *returned*, not what was delivered: it is off.
- Rebalances run in a background task. ``on_partitions_revoked`` drains the work in flight for
  the revoked partitions (deadline below the rebalance timeout), commits their watermark while
  they are still ours, fences them (late answers are then ignored) and drops their buffered
  events. Nothing here awaits the consumer loop, which is parked in ``getmany`` meanwhile.
- Every assignment starts from fresh partition state: positions come from the committed offsets
  (the same as ``seek_to_committed``) and pauses are forgotten, so ``on_partitions_assigned``
  re-applies the pause when the backlog gate is closed.
- A paused partition's fetched records are dropped (and fetched and decompressed again after
  the resume), so a closed backlog gate first *holds*: the loop stops polling and waits for the
  backlog to drain, and what aiokafka fetched stays buffered (bounded by the fetch sizes). Only
  a gate closed for ``HOLD_BEFORE_PAUSE_S`` (or for a setup failure) pauses the partitions.
- ``getmany`` keeps being called while everything is paused, so ``max_poll_interval_ms`` is
  never exceeded however long the collector is down (a hold is far shorter than it).
- Records the sink had no room for are not skipped: the loop seeks back to the first of them.
- ``stop()`` does not call the revoke listener: :meth:`ForwarderConsumer.commit` and
  :meth:`ForwarderConsumer.close` are run explicitly by the entrypoint's shutdown sequence.
- A commit rejected because the group moved on (``CommitFailedError``) is logged and left: the
  rejoin that follows revokes, and re-reads from the last accepted commit.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Collection, Hashable, Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.conn import AIOKafkaConnection
from aiokafka.errors import CommitFailedError, ConsumerStoppedError, KafkaError
from tracking_common.kafka_security import check_access
from tracking_common.settings import parse_bootstrap_servers

from forwarder_service.backpressure import FlowGate, PauseReason
from forwarder_service.errors import ConsumerCrashedError, FatalForwarderError
from forwarder_service.metrics import ForwarderMetrics
from forwarder_service.pipeline import Pipeline
from forwarder_service.ports import RecordTag
from forwarder_service.settings import ForwarderSettings

__all__ = ["ForwarderConsumer", "check_kafka_access", "consumer_options"]

logger = logging.getLogger(__name__)

_COMMIT_TIMEOUT_S = 10.0
_KAFKA_CALL_TIMEOUT_S = 10.0
_LAG_CALL_TIMEOUT_S = 5.0
HOLD_BEFORE_PAUSE_S = 5.0
"""How long a closed backlog gate only stops polling before it pauses the partitions."""


def consumer_options(settings: ForwarderSettings) -> dict[str, Any]:
    """The AIOKafkaConsumer options the forwarder runs with (TLS and SASL included)."""
    return {
        **settings.client_options(),
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "group_id": settings.forwarder_group_id,
        "group_instance_id": settings.forwarder_group_instance_id,
        "client_id": "tracking-forwarder",
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        # Never forward records of aborted transactions.
        "isolation_level": "read_committed",
        "fetch_max_bytes": settings.forwarder_fetch_max_bytes,
        "max_partition_fetch_bytes": settings.forwarder_max_partition_fetch_bytes,
        "check_crcs": settings.forwarder_check_crcs,
        "session_timeout_ms": settings.forwarder_session_timeout_ms,
        "heartbeat_interval_ms": settings.forwarder_heartbeat_interval_ms,
        "rebalance_timeout_ms": settings.forwarder_rebalance_timeout_ms,
        "max_poll_interval_ms": settings.forwarder_max_poll_interval_ms,
    }


async def check_kafka_access(settings: ForwarderSettings, options: dict[str, Any]) -> str | None:
    """The broker that accepted one connection with ``options``, or None if none answered.

    Raises KafkaSecurityError (naming the setting) when a broker refuses the credentials or the
    TLS setup; aiokafka's clients only log why they could not bootstrap.
    """
    connection = functools.partial(
        AIOKafkaConnection,
        client_id="tracking-forwarder",
        request_timeout_ms=int(_KAFKA_CALL_TIMEOUT_S * 1000),
        **options,
    )
    servers = parse_bootstrap_servers(settings.kafka_bootstrap_servers)
    return await check_access(settings, servers, connection, timeout_s=_KAFKA_CALL_TIMEOUT_S)


class _Listener(ConsumerRebalanceListener):  # type: ignore[misc]  # aiokafka is untyped
    def __init__(self, owner: ForwarderConsumer) -> None:
        self._owner = owner

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._owner.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._owner.on_assigned(assigned)


class ForwarderConsumer:
    """Owns the AIOKafkaConsumer and runs the forwarding loop."""

    def __init__(
        self,
        *,
        settings: ForwarderSettings,
        pipeline: Pipeline,
        gate: FlowGate,
        metrics: ForwarderMetrics,
        options: dict[str, Any] | None = None,
        consumer_factory: Callable[..., AIOKafkaConsumer] = AIOKafkaConsumer,
        hold_before_pause_s: float = HOLD_BEFORE_PAUSE_S,
    ) -> None:
        self._settings = settings
        self._pipeline = pipeline
        self._gate = gate
        self._metrics = metrics
        self._options = options if options is not None else consumer_options(settings)
        self._consumer_factory = consumer_factory
        self._hold_s = hold_before_pause_s
        self._closed_at: float | None = None  # when the backlog gate last closed
        self._consumer: AIOKafkaConsumer | None = None
        self._stopping = False
        self._joined = False
        self._closed = False
        self._base_offsets: dict[TopicPartition, int] = {}
        self._lag_task: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """Joined the group (possibly with no partitions) and not shutting down."""
        return self._joined and not self._stopping and self._consumer is not None

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop_fetching` was called."""
        return self._stopping

    async def start(self) -> None:
        """Connect and subscribe to the events topic (bounded wait)."""
        if self._consumer is not None:
            return
        consumer = self._consumer_factory(**self._options)
        try:
            async with asyncio.timeout(_KAFKA_CALL_TIMEOUT_S * 3):
                await consumer.start()
        except (KafkaError, TimeoutError, OSError) as exc:
            await self._stop_consumer(consumer)
            raise ConsumerCrashedError(f"cannot start the Kafka consumer: {exc!r}") from exc
        consumer.subscribe([self._settings.events_topic], listener=_Listener(self))
        self._consumer = consumer

    def stop_fetching(self) -> None:
        """Stop taking records: pause everything and let :meth:`run` return."""
        self._stopping = True
        consumer = self._consumer
        if consumer is not None:
            assigned = consumer.assignment()
            if assigned:
                consumer.pause(*assigned)

    async def close(self, timeout_s: float = _KAFKA_CALL_TIMEOUT_S) -> None:
        """Leave the group and close (idempotent, within ``timeout_s``). Commit first: this
        does not."""
        if self._closed:
            return
        self._closed = True
        self._stopping = True
        task, self._lag_task = self._lag_task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._consumer is not None:
            await self._stop_consumer(self._consumer, timeout_s)

    @staticmethod
    async def _stop_consumer(
        consumer: AIOKafkaConsumer, timeout_s: float = _KAFKA_CALL_TIMEOUT_S
    ) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await consumer.stop()
        except (KafkaError, TimeoutError, OSError) as exc:
            logger.warning("Kafka consumer did not close cleanly: %r", exc)

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll, hand records to the pipeline, pause/resume and commit until stopped.

        Raises a FatalForwarderError when the pipeline failed (dead-letter topic down) or the
        consumer hit an error it cannot recover from.
        """
        consumer = self._require()
        settings = self._settings
        poll_ms, max_records = (
            settings.forwarder_poll_timeout_ms,
            settings.forwarder_max_poll_records,
        )
        next_commit = time.monotonic()
        next_lag = time.monotonic()
        while not self._stop_requested():
            self._raise_if_failed()
            # While the gate is closed the loop waits for the backlog to drain instead of
            # sleeping in a poll. Holding (the first HOLD_BEFORE_PAUSE_S), it does not poll at
            # all, so what aiokafka fetched stays buffered for the resume; once paused, it
            # polls without waiting, to stay in the group (a paused partition's fetched
            # records are dropped, and fetched again after the resume).
            if self._gate.state.paused and not self._holding():
                self._apply_gate()  # a hold that just ended pauses before the next poll
            paused = self._gate.state.paused
            if not (paused and self._holding()):
                try:
                    batches = await consumer.getmany(
                        timeout_ms=0 if paused else poll_ms, max_records=max_records
                    )
                except ConsumerStoppedError:
                    return
                except KafkaError as exc:
                    if not getattr(exc, "retriable", False):
                        raise ConsumerCrashedError(f"Kafka consumer failed: {exc!r}") from exc
                    logger.warning("transient Kafka consumer error: %r", exc)
                    continue
                if self._stop_requested():
                    break  # taken records were not handed off; they are read again next time
                self._take(consumer, batches)
            self._apply_gate()
            if self._gate.state.paused:
                await self._pipeline.wait_for_progress(poll_ms / 1000)
                self._apply_gate()
            now = time.monotonic()
            # Coalesced: the first poll after the watermark advances commits, at most once
            # per interval; with nothing new the clock is not reset, so the next advance is
            # committed at once (fewer records to repeat after a crash).
            if now >= next_commit and await self.commit():
                next_commit = time.monotonic() + settings.forwarder_commit_interval_s
            if now >= next_lag:
                self._refresh_lag()
                next_lag = time.monotonic() + settings.forwarder_lag_interval_s
        self._raise_if_failed()

    def _stop_requested(self) -> bool:
        return self._stopping

    def _raise_if_failed(self) -> None:
        failure: FatalForwarderError | None = self._pipeline.failure
        if failure is not None:
            raise failure

    def _take(self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[Any]]) -> None:
        owned = self._pipeline.tracker.owned()
        full = False
        for tp, records in batches.items():
            if full or tp not in owned:
                # Not ours yet (assignment callback still running) or no room: read it again.
                # A partition already gone needs nothing: its next owner starts at the commit.
                if tp in consumer.assignment():
                    consumer.seek(tp, records[0].offset)
                continue
            stopped_at = self._pipeline.accept(tp, records)
            if stopped_at is not None:
                consumer.seek(tp, records[stopped_at].offset)
                full = True
        if full:
            self._gate.hold()

    def _apply_gate(self) -> None:
        consumer = self._require()
        events, size = self._pipeline.backlog()
        before = self._gate.state
        state = self._gate.update(
            events=events, size_bytes=size, setup_failure=self._pipeline.sink.setup_failing
        )
        if not state.paused:
            self._closed_at = None
        elif self._closed_at is None:
            self._closed_at = time.monotonic()
        assigned = consumer.assignment()
        paused = consumer.paused()
        if self._stopping or (state.paused and not self._holding()):
            to_pause = assigned - paused
            if to_pause:
                consumer.pause(*to_pause)
        elif paused:
            consumer.resume(*paused)
        if state != before:
            logger.info(
                "fetching %s (backlog %d events, %d bytes)%s",
                "paused" if state.paused else "resumed",
                events,
                size,
                f": {state.reason.value}" if state.reason else "",
            )
        self._metrics.gauges.paused_partitions = len(consumer.paused())

    def _holding(self) -> bool:
        """The gate is closed for the backlog, not yet for long: stop polling, keep what
        aiokafka fetched. A setup failure pauses at once (it is rarely short)."""
        closed_at, state = self._closed_at, self._gate.state
        return (
            closed_at is not None
            and state.reason is not PauseReason.SETUP_FAILURE
            and time.monotonic() - closed_at < self._hold_s
        )

    # -- commits ---------------------------------------------------------------------------

    async def commit(
        self,
        partitions: Collection[TopicPartition] | None = None,
        *,
        timeout_s: float = _COMMIT_TIMEOUT_S,
    ) -> bool:
        """Commit the settled watermark of ``partitions`` (default: all) still assigned; a
        commit not acknowledged within ``timeout_s`` is logged and left for the next one.

        Returns whether there was anything to commit (a commit was attempted)."""
        consumer = self._consumer
        if consumer is None or self._closed:
            return False
        assigned = consumer.assignment()
        chosen = assigned if partitions is None else assigned & set(partitions)
        tracker = self._pipeline.tracker
        offsets: dict[Hashable, int] = tracker.committable(chosen)
        if not offsets:
            return False
        generations = tracker.generations(offsets)
        try:
            async with asyncio.timeout(timeout_s):
                await consumer.commit({tp: (offset, "") for tp, offset in offsets.items()})
        except CommitFailedError as exc:
            self._metrics.commit_failures.add(1, {"reason": "rebalance"})
            logger.warning("commit rejected, the group is rebalancing: %s", exc)
            return True
        except (KafkaError, TimeoutError) as exc:
            reason = "timeout" if isinstance(exc, TimeoutError) else "error"
            self._metrics.commit_failures.add(1, {"reason": reason})
            logger.warning(
                "commit of %s failed (%r); unless a later commit covers them, those records "
                "are delivered again after a restart or rebalance",
                offsets,
                exc,
            )
            return True
        tracker.committed(offsets, generations)
        self._metrics.commits.add(1)
        logger.debug("committed %s", offsets)
        return True

    # -- rebalances ------------------------------------------------------------------------

    async def on_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        """Drain, commit, fence and drop buffered events of the revoked partitions."""
        revoked = set(revoked)
        if not revoked:
            return
        tracker = self._pipeline.tracker
        ours = revoked & tracker.owned()
        in_flight = tracker.outstanding(ours)
        if ours and self._pipeline.failure is None:
            drained = await self._pipeline.drain(
                ours, timeout_s=self._settings.forwarder_revoke_drain_timeout_s
            )
            await self.commit(ours)
            if not drained:
                logger.warning(
                    "revoke: %d record(s) unsettled at the deadline; they will be read again",
                    tracker.outstanding(ours),
                )
        tracker.revoke(revoked)
        dropped = self._pipeline.sink.discard(lambda tag: _tag_in(tag, revoked))
        for tp in revoked:
            self._base_offsets.pop(tp, None)
            self._metrics.gauges.lag.pop((tp.topic, tp.partition), None)
        logger.info(
            "revoked %d partition(s) with %d record(s) in flight; dropped %d buffered event(s)",
            len(revoked),
            in_flight,
            dropped,
        )

    async def on_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        """Start a new generation; re-apply the pause aiokafka forgot."""
        assigned = set(assigned)
        self._pipeline.tracker.assign(assigned)
        self._joined = True
        consumer = self._require()
        if assigned and (self._gate.state.paused or self._stopping):
            consumer.pause(*assigned)
        self._metrics.gauges.paused_partitions = len(consumer.paused())
        logger.info("assigned %d partition(s): %s", len(assigned), sorted(assigned))

    # -- lag -------------------------------------------------------------------------------

    async def _update_lag(self) -> None:
        """Lag = log end offset - committed offset, per assigned partition.

        The end offsets are asked of the broker (bounded wait) rather than read from the last
        fetch: paused partitions are not fetched, so during an outage the fetch's high-water
        mark would freeze and hide the growing lag. The fetch's mark is the fallback.
        """
        consumer = self._require()
        assigned = consumer.assignment()
        if not assigned:
            self._metrics.gauges.lag = {}
            return
        try:
            async with asyncio.timeout(_LAG_CALL_TIMEOUT_S):
                ends: dict[TopicPartition, int] = await consumer.end_offsets(list(assigned))
        except (KafkaError, TimeoutError, OSError) as exc:
            logger.debug("end offsets unavailable, using the last fetch's: %r", exc)
            ends = {}
        progress = self._pipeline.tracker.progress()
        lags: dict[tuple[str, int], int] = {}
        for tp in assigned:
            end = ends.get(tp)
            if end is None:
                end = consumer.highwater(tp)
            if end is None:
                continue
            state = progress.get(tp)
            base = state.committed if state is not None else None
            if base is None:
                base = await self._base_offset(consumer, tp)
            if base is not None:
                lags[(tp.topic, tp.partition)] = max(0, end - base)
        # A rebalance may have run during the awaits: report only partitions still ours.
        still = consumer.assignment()
        self._metrics.gauges.lag = {
            key: lag for key, lag in lags.items() if TopicPartition(*key) in still
        }

    def _refresh_lag(self) -> None:
        """Refresh the lag gauge in the background: the loop never waits on the broker for it."""
        task = self._lag_task
        if task is not None and not task.done():
            return
        self._lag_task = asyncio.create_task(self._update_lag_logged(), name="forwarder-lag")

    async def _update_lag_logged(self) -> None:
        try:
            await self._update_lag()
        except Exception as exc:  # a gauge must never take the service down
            logger.warning("consumer lag not updated: %r", exc)

    async def _base_offset(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> int | None:
        if tp not in self._base_offsets:
            try:
                async with asyncio.timeout(_KAFKA_CALL_TIMEOUT_S):
                    committed = await consumer.committed(tp)
            except (KafkaError, TimeoutError):
                return None
            self._base_offsets[tp] = committed or 0
        return self._base_offsets[tp]

    def _require(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            raise RuntimeError("consumer is not started")
        return self._consumer


def _tag_in(tag: RecordTag, partitions: set[TopicPartition]) -> bool:
    return tag.tp in partitions
