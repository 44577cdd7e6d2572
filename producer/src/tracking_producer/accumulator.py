"""One open batch per partition, shared by every request that publishes meanwhile.

aiokafka keeps at most one batch per partition queued behind the produce request in flight, so a
batch per request meant one request's records per partition per round trip: concurrent single
events waited in line, one round trip each. Here the records of every request go into the open
batch of their partition, in call order (appending is synchronous); a drain task per partition
closes the oldest batch and hands it to Kafka (``send``) once it is ``linger_s`` old or full,
and while Kafka's slot for the partition is busy, the records that arrive meanwhile gather in
the next open batch. A round trip therefore carries whatever arrived during the previous one or
the linger, like aiokafka's own ``send()`` with ``linger_ms``, but with one future per batch
rather than per record.

Each batch has one :class:`asyncio.Future` (its acknowledgement), resolved from Kafka's answer
for the batch, or with the exception that kept it from Kafka. :meth:`append` returns the futures
of the batches a request's records went into; the request awaits them. Order: within a
partition, records are produced in the order :meth:`append` was called, batch after batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiokafka.producer.message_accumulator import BatchBuilder
from tracking_common.messages import Message

__all__ = ["BatchAccumulator", "Partition"]

logger = logging.getLogger(__name__)

Partition = tuple[str, int]
"""A topic and one of its partitions."""

SendBatch = Callable[[BatchBuilder, str, int], Awaitable["asyncio.Future[Any]"]]
"""Hands a closed batch to Kafka; returns the future of its acknowledgement."""


@dataclass(slots=True)
class _Batch:
    builder: BatchBuilder
    opened_at: float  # loop time
    acknowledged: asyncio.Future[None]


class BatchAccumulator:
    """Open batches per partition and the drain tasks that hand them to Kafka.

    ``linger_s``: the least age of a batch that is not full when it is handed over. Created on
    the running loop it serves, which it holds: ``asyncio.get_running_loop`` makes a system
    call on Python 3.11 (``getpid``, 0.2 us here), and a batch used it three times.
    """

    def __init__(
        self, new_batch: Callable[[], BatchBuilder], send: SendBatch, *, linger_s: float = 0.0
    ) -> None:
        self._new_batch = new_batch
        self._send = send
        self._linger_s = linger_s
        self._loop = asyncio.get_running_loop()
        self._queues: dict[Partition, deque[_Batch]] = {}
        self._draining: dict[Partition, asyncio.Task[None]] = {}
        self._lingering: dict[Partition, asyncio.Future[None]] = {}

    def append(
        self, partition: Partition, messages: Iterable[Message]
    ) -> list[asyncio.Future[None]]:
        """Add ``messages`` to ``partition``'s open batch (a new one when it fills), in order.

        Returns the acknowledgement futures of the batches they went into.
        """
        queue = self._queues.get(partition)
        if queue is None:
            queue = self._queues[partition] = deque()
        batch = queue[-1] if queue else self._open(queue)
        futures = [batch.acknowledged]
        for message in messages:
            if not _append(batch.builder, message):  # full (and closed by aiokafka)
                batch = self._open(queue)
                futures.append(batch.acknowledged)
                _append(batch.builder, message)  # an empty batch takes any record
        if len(futures) > 1 and (lingering := self._lingering.get(partition)) is not None:
            _wake(lingering)  # a batch filled: it goes now
        if partition not in self._draining:
            self._draining[partition] = self._loop.create_task(
                self._drain(partition, queue), name=f"kafka-batches-{partition[0]}-{partition[1]}"
            )
        return futures

    @property
    def pending_batches(self) -> int:
        """Batches not yet handed to Kafka, over every partition."""
        return sum(len(queue) for queue in self._queues.values())

    async def drained(self) -> None:
        """Wait until every batch appended so far was handed to Kafka (not acknowledged)."""
        while self._draining:
            await asyncio.wait(list(self._draining.values()))

    async def close(self) -> None:
        """Stop the drain tasks; batches not yet handed over are cancelled."""
        tasks = list(self._draining.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for queue in self._queues.values():
            while queue:
                queue.popleft().acknowledged.cancel()

    def _open(self, queue: deque[_Batch]) -> _Batch:
        loop = self._loop
        batch = _Batch(self._new_batch(), loop.time(), loop.create_future())
        queue.append(batch)
        return batch

    async def _drain(self, partition: Partition, queue: deque[_Batch]) -> None:
        topic, number = partition
        loop = self._loop
        try:
            while queue:
                if self._linger_s and len(queue) == 1:
                    # The open batch (a full one has a successor) gathers records until it is
                    # linger_s old: fewer, fuller produce requests.
                    wait = queue[0].opened_at + self._linger_s - loop.time()
                    if wait > 0:
                        await self._linger(partition, wait)
                        continue
                # Taken before the await: what arrives from now on goes into a new open batch.
                batch = queue.popleft()
                batch.builder.close()
                try:
                    answer = await self._send(batch.builder, topic, number)
                except asyncio.CancelledError:
                    batch.acknowledged.cancel()
                    raise
                except Exception as exc:
                    logger.warning("a batch for %s/%d did not reach Kafka: %r", topic, number, exc)
                    _fail(batch, exc)
                    continue
                answer.add_done_callback(_settle(batch.acknowledged))
        finally:
            del self._draining[partition]
            if not queue:
                self._queues.pop(partition, None)

    async def _linger(self, partition: Partition, wait_s: float) -> None:
        """Wait ``wait_s``, or less if the open batch fills meanwhile (``append`` wakes us)."""
        loop = self._loop
        waiter = loop.create_future()
        self._lingering[partition] = waiter
        timer = loop.call_later(wait_s, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            del self._lingering[partition]


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _append(builder: BatchBuilder, message: Message) -> bool:
    """Add ``message`` to ``builder`` (timestamped now); False if the batch is full."""
    # aiokafka's builder takes a list only; this one lives for the call (messages keep tuples).
    headers = list(message.headers)
    metadata = builder.append(timestamp=None, key=message.key, value=message.value, headers=headers)
    return metadata is not None


def _fail(batch: _Batch, exc: BaseException) -> None:
    if not batch.acknowledged.done():
        batch.acknowledged.set_exception(exc)


def _settle(acknowledged: asyncio.Future[None]) -> Callable[[asyncio.Future[Any]], None]:
    def settle(answer: asyncio.Future[Any]) -> None:
        if acknowledged.done():
            return
        if answer.cancelled():
            acknowledged.cancel()
        elif (exc := answer.exception()) is not None:
            acknowledged.set_exception(exc)
        else:
            acknowledged.set_result(None)

    return settle
