"""Publishing to Kafka with a deadline on every await, a bounded buffer and a readiness signal.

:class:`KafkaPublisher` wraps an idempotent aiokafka producer (acks=all, zstd). A request's
messages are acknowledged together or the request fails: :meth:`publish` raises
:class:`PublishError` when Kafka is unreachable, slower than the deadline, or the bytes awaiting
acknowledgement would pass the budget. aiokafka's idempotent producer can wait forever for a
broker that is gone, so nothing here awaits it without :func:`asyncio.timeout`.

A request is produced in batches: its messages are grouped by the partition a Java client
would choose for their keys (murmur2) and appended to that partition's open batch, which every
concurrent request shares (:mod:`tracking_producer.accumulator`); one future per batch. The
producer sets its id, epoch and sequence on every batch as it drains it, so idempotence holds as
for ``send``. Once :meth:`publish` returns, every message is on all in-sync replicas, in order
within its partition. A :class:`PublishError` does not mean nothing was written: a timed-out
batch may still land, so a client's retry can duplicate (downstream deduplicates on the event
id).

Connecting is retried while no broker answers. When one answers but refuses us (wrong SASL
password, untrusted or mismatched certificate: see :mod:`tracking_common.kafka_security`),
retrying cannot help: :attr:`KafkaPublisher.refusal` is set and :meth:`KafkaPublisher.refused`
returns, so the entrypoint exits with code 2 naming the setting.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.cluster import ClusterMetadata
from aiokafka.conn import AIOKafkaConnection
from aiokafka.errors import KafkaConnectionError, KafkaError
from aiokafka.producer.message_accumulator import BatchBuilder
from tracking_common.deadlines import Deadlines
from tracking_common.kafka_security import KafkaSecurityError, KafkaSecuritySettings, check_access
from tracking_common.messages import Message
from tracking_common.settings import parse_bootstrap_servers

from tracking_producer.accumulator import BatchAccumulator, Partition
from tracking_producer.errors import PublishError
from tracking_producer.partitioner import CachedPartitioner
from tracking_producer.settings import DEFAULT_COMPRESSION, Compression

__all__ = ["KafkaPublisher", "Publisher"]

_RESOLUTION_S = 0.05  # how late a timed-out acknowledgement may be noticed


logger = logging.getLogger(__name__)


class Publisher(Protocol):
    """What a service needs from Kafka (the API's handlers take this port; tests fake it)."""

    @property
    def ready(self) -> bool:
        """Connected, and with room in the buffer."""
        ...

    @property
    def buffered_bytes(self) -> int:
        """Bytes handed to Kafka and not yet acknowledged."""
        ...

    async def publish(self, messages: Sequence[Message]) -> None:
        """Return once Kafka acknowledged every message; else raise PublishError."""
        ...

    async def start(self) -> None:
        """Begin connecting (returns at once; readiness says when it is connected)."""
        ...

    async def stop(self, timeout_s: float) -> None:
        """Flush what is buffered within ``timeout_s`` and close."""
        ...


class KafkaPublisher:
    """The aiokafka-backed :class:`Publisher`."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        timeout_s: float,
        buffer_bytes: int,
        linger_ms: int,
        compression: Compression = DEFAULT_COMPRESSION,
        probe_interval_s: float = 2.0,
        client_id: str = "tracking-api",
        security: KafkaSecuritySettings | None = None,
    ) -> None:
        self._bootstrap = bootstrap_servers
        self._security = security or KafkaSecuritySettings()
        self._security_options: dict[str, Any] = {}
        self.refusal: KafkaSecurityError | None = None
        self._refused = asyncio.Event()
        self._timeout_s = timeout_s
        self._budget = buffer_bytes
        self._linger_ms = linger_ms
        self._compression = None if compression == "none" else compression
        self._probe_interval_s = probe_interval_s
        self._client_id = client_id
        self._producer: AIOKafkaProducer | None = None
        self._buffered = 0
        self._connected = False
        self._task: asyncio.Task[None] | None = None
        self._partitioner = CachedPartitioner()
        # Per topic, its partitions and those with a leader, until the metadata changes.
        self._partitions: dict[str, tuple[list[int], list[int]]] = {}
        self._batches: BatchAccumulator | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._acks = Deadlines(timeout_s, resolution_s=_RESOLUTION_S)

    @property
    def ready(self) -> bool:
        """Connected (the last metadata probe answered) and under the buffer budget."""
        return self._connected and self._buffered < self._budget

    @property
    def buffered_bytes(self) -> int:
        """Bytes awaiting acknowledgement."""
        return self._buffered

    @property
    def cached_partition_keys(self) -> int:
        """Keys whose partition hash is kept (recurring keys only; bounded)."""
        return self._partitioner.cached_keys

    async def refused(self) -> KafkaSecurityError:
        """Wait until a broker refuses this client's credentials or TLS setup; return why."""
        await self._refused.wait()
        assert self.refusal is not None  # noqa: S101 - set before the event
        return self.refusal

    async def start(self) -> None:
        """Connect in the background, retrying, then keep probing the cluster."""
        self._security_options = self._security.client_options()
        # Held for the hot path: asyncio.get_running_loop makes a system call on Python 3.11.
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name="kafka-publisher")

    async def publish(self, messages: Sequence[Message]) -> None:
        """Send ``messages`` and wait for every acknowledgement, within the deadline."""
        producer, batches, loop = self._producer, self._batches, self._loop
        if producer is None or batches is None or loop is None or not self._connected:
            raise PublishError("unavailable", "Kafka is not connected")
        size = self._reserve(messages)
        futures: list[asyncio.Future[None]] = []
        answered: asyncio.Future[None] | None = None
        deadline: float | None = None  # set when the metadata is waited for
        try:
            groups = self._groups(producer.client.cluster, messages)
            if groups is None:  # a topic not in the metadata yet: waited for, then grouped
                deadline = loop.time() + self._timeout_s
                groups = await self._groups_after_metadata(producer, messages, deadline)
            # Appended without a pause, so a request's records stay together and in
            # arrival order within each partition, whatever other requests do.
            for partition, group in groups.items():
                futures += batches.append(partition, group)
            if deadline is None:
                answered = self._answered(loop, futures)
                await answered
            else:  # a new topic's metadata was waited for: what is left of the deadline
                async with asyncio.timeout_at(deadline):
                    await asyncio.wait(futures)  # which never cancels them
            for future in futures:
                future.result()  # raises the batch's KafkaError
        except TimeoutError as exc:
            raise PublishError("timeout", "Kafka did not acknowledge in time") from exc
        except KafkaError as exc:
            raise PublishError("error", f"Kafka refused the messages: {exc!r}") from exc
        except asyncio.CancelledError as exc:
            if not any(future.cancelled() for future in futures):
                raise  # the caller was cancelled
            raise PublishError("unavailable", "the producer closed before acknowledging") from exc
        finally:
            if answered is not None:
                self._acks.stop(answered)
            self._release(futures, size)

    def _reserve(self, messages: Sequence[Message]) -> int:
        """Count ``messages``' bytes against the budget (PublishError past it); their size."""
        size = sum(len(m.value) + len(m.key or b"") for m in messages)
        if self._buffered + size > self._budget:
            raise PublishError("buffer_full", "the Kafka buffer is full")
        self._buffered += size
        return size

    def _answered(
        self, loop: asyncio.AbstractEventLoop, futures: list[asyncio.Future[None]]
    ) -> asyncio.Future[None]:
        """A future of the request's own: done once every one of ``futures`` is, or failed
        with TimeoutError at the deadline.

        It is resolved by the last batch answered, and its deadline is one among the
        publisher's (:class:`~tracking_common.deadlines.Deadlines`), rather than
        ``asyncio.wait``'s set, callbacks and timer per call (6 % of a single event's server
        CPU, py-spy). The batches' futures are never cancelled from here, so a late
        acknowledgement still frees the budget (see _release). The caller stops the deadline.
        """
        answered: asyncio.Future[None] = loop.create_future()
        left = len(futures)

        def one_done(_: asyncio.Future[None]) -> None:
            nonlocal left
            left -= 1
            if left == 0 and not answered.done():
                answered.set_result(None)

        for future in futures:
            future.add_done_callback(one_done)
        self._acks.start(answered, functools.partial(_time_out, answered), loop)
        return answered

    async def _send_batch(self, batch: BatchBuilder, topic: str, partition: int) -> Any:
        producer = self._producer
        if producer is None:
            raise KafkaConnectionError("the producer is closed")
        return await producer.send_batch(batch, topic, partition=partition)

    def _groups(
        self, cluster: ClusterMetadata, messages: Sequence[Message]
    ) -> dict[Partition, list[Message]] | None:
        """``messages`` grouped by the partition a Java client would choose, in order; None
        when a topic is not in the metadata yet."""
        # A topic's partitions are looked up once per metadata update (aiokafka builds two
        # sets per look-up, 1.5 us).
        known = self._partitions
        groups: dict[Partition, list[Message]] = {}
        for message in messages:
            topic, key = message.topic, message.key
            found = known.get(topic)
            if found is None:
                partitions = cluster.partitions_for_topic(topic)
                if not partitions:
                    return None
                available = cluster.available_partitions_for_topic(topic)
                found = known[topic] = (sorted(partitions), sorted(available or partitions))
            every, with_leader = found
            if key:
                partition = self._partitioner.keyed(key, every, recurs=message.key_recurs)
            else:
                partition = self._partitioner(None, every, with_leader)
            groups.setdefault((topic, partition), []).append(message)
        return groups

    async def _groups_after_metadata(
        self, producer: AIOKafkaProducer, messages: Sequence[Message], deadline: float
    ) -> dict[Partition, list[Message]]:
        """:meth:`_groups`, once every topic is in the metadata (until ``deadline``, loop time)."""
        async with asyncio.timeout_at(deadline):
            while (groups := self._groups(producer.client.cluster, messages)) is None:
                for topic in {message.topic for message in messages}:
                    await producer.partitions_for(topic)
        return groups

    def _release(self, futures: list[asyncio.Future[None]], size: int) -> None:
        # The budget frees when Kafka is done with the bytes, not when the caller gave up.
        pending = [future for future in futures if not future.done()]
        if not pending:
            self._buffered -= size
            return
        remaining = len(pending)

        def _done(future: asyncio.Future[None]) -> None:
            nonlocal remaining
            if not future.cancelled():
                future.exception()  # retrieved, so a late failure is not logged as unhandled
            remaining -= 1
            if remaining == 0:
                self._buffered -= size

        for future in pending:
            future.add_done_callback(_done)

    async def stop(self, timeout_s: float) -> None:
        """Flush within ``timeout_s``, then close (abandoning what is left)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        producer, batches = self._producer, self._batches
        self._connected = False
        if producer is None or batches is None:
            return
        try:
            async with asyncio.timeout(timeout_s):
                await batches.drained()
                await producer.flush()
        except TimeoutError:
            logger.error("kafka flush did not finish in %.1f s", timeout_s)  # noqa: TRY400
        await batches.close()
        self._producer = self._batches = None
        try:
            async with asyncio.timeout(max(1.0, timeout_s / 4)):
                await producer.stop()
        except TimeoutError:
            logger.error("kafka producer did not stop in time")  # noqa: TRY400

    async def _run(self) -> None:
        delay = 0.5
        while self._producer is None:
            producer = self._new_producer()
            try:
                async with asyncio.timeout(self._timeout_s):
                    await producer.start()
            except (KafkaError, TimeoutError, OSError) as exc:
                with contextlib.suppress(TimeoutError, KafkaError):
                    async with asyncio.timeout(5):
                        await producer.stop()
                if await self._refuses_us():
                    return
                logger.warning("kafka not reachable yet (%r); retrying in %.1f s", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)
                continue
            self._producer = producer
            self._partitions.clear()
            # Every metadata update may move partitions or leaders: look them up afresh.
            producer.client.cluster.add_listener(lambda _: self._partitions.clear())
            self._batches = BatchAccumulator(
                producer.create_batch, self._send_batch, linger_s=self._linger_ms / 1000
            )
            self._connected = True
            logger.info(
                "kafka producer connected to %s (%s)",
                self._bootstrap,
                self._security.describe_security(),
            )
        while True:
            await asyncio.sleep(self._probe_interval_s)
            self._connected = await self._probe(self._producer)

    async def _refuses_us(self) -> bool:
        # aiokafka's producer logs why its bootstrap failed and raises a bare "unable to
        # bootstrap"; one connection of our own tells a refusal from an outage.
        connection = functools.partial(
            AIOKafkaConnection,
            client_id=self._client_id,
            request_timeout_ms=int(self._timeout_s * 1000),
            **self._security_options,
        )
        try:
            await check_access(
                self._security,
                parse_bootstrap_servers(self._bootstrap),
                connection,
                timeout_s=self._timeout_s,
            )
        except KafkaSecurityError as refusal:
            logger.critical("kafka refuses this client: %s", refusal)
            self.refusal = refusal
            self._refused.set()
            return True
        return False

    async def _probe(self, producer: AIOKafkaProducer) -> bool:
        started = time.monotonic()
        try:
            async with asyncio.timeout(max(1.0, self._probe_interval_s)):
                await producer.client.fetch_all_metadata()  # raises if no broker answers
            ok = True
        except (KafkaError, TimeoutError, OSError):
            ok = False
        if ok != self._connected:
            state = "reachable again" if ok else "unreachable"
            logger.warning("kafka %s (probe took %.2f s)", state, time.monotonic() - started)
        return ok

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            client_id=self._client_id,
            acks="all",
            enable_idempotence=True,
            compression_type=self._compression,
            linger_ms=self._linger_ms,
            max_batch_size=256 * 1024,
            max_request_size=4 * 1024 * 1024,
            request_timeout_ms=int(self._timeout_s * 1000),
            partitioner=self._partitioner,
            **self._security_options,
        )


def _time_out(answered: asyncio.Future[None]) -> None:
    if not answered.done():
        answered.set_exception(TimeoutError())
