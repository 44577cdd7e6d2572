"""``KafkaEmitter``: the Snowplow-style :class:`~tracking_common.emitter.tracker.Tracker` of
``common`` producing through the library instead of posting to a collector.

It implements common's ``Emitter`` port: ``add`` takes a payload without waiting (the tracker's
``track_*`` methods are synchronous), and every ``batch_size`` payloads, or on ``flush``, a batch
goes to :meth:`EventProducer.send_valid` with ``tracker_protocol=True``: checked as ``/tp2``
checks payloads, the valid ones produced. Nothing is retried here: an invalid payload or a batch
Kafka did not acknowledge is logged, counted by the library's metrics and handed to
``on_failure`` (the payloads and why), never dropped silently. ``capacity`` bounds the payloads
waiting (``BufferFullError`` beyond it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tracking_common.emitter.errors import BufferFullError, EmitterClosedError

from tracking_producer.errors import NotProducedError

if TYPE_CHECKING:
    from tracking_producer.producer import EventProducer

__all__ = ["KafkaEmitter", "OnFailure"]

logger = logging.getLogger(__name__)

OnFailure = Callable[[Sequence[Mapping[str, str]], str], None]
"""Called with payloads that were not produced and why (invalid, or Kafka did not acknowledge)."""


class KafkaEmitter:
    """Batches a tracker's payloads and produces them through an :class:`EventProducer`."""

    def __init__(
        self,
        producer: EventProducer,
        *,
        batch_size: int = 500,
        capacity: int = 10_000,
        on_failure: OnFailure | None = None,
    ) -> None:
        self._producer = producer
        self._batch_size = batch_size
        self._capacity = capacity
        self._on_failure = on_failure
        self._buffer: list[Mapping[str, str]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._in_flight = 0
        self._closed = False

    def add(self, payload: Mapping[str, str], *, tag: Any = None) -> None:
        """Take one payload; a full batch starts sending. Raises BufferFullError at capacity."""
        if self._closed:
            raise EmitterClosedError("the emitter is closed")
        if len(self._buffer) + self._in_flight >= self._capacity:
            raise BufferFullError(
                f"{self._capacity} payloads already wait for Kafka",
                pending_events=len(self._buffer) + self._in_flight,
                pending_bytes=0,
            )
        self._buffer.append(payload)
        if len(self._buffer) >= self._batch_size:
            self.flush_nowait()

    def flush_nowait(self) -> None:
        """Start sending what is buffered."""
        while self._buffer:
            batch = self._buffer[: self._batch_size]
            del self._buffer[: self._batch_size]
            self._in_flight += len(batch)
            task = asyncio.create_task(self._send(batch), name="kafka-emitter-batch")
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)

    async def flush(self) -> None:
        """Send what is buffered and wait until every batch taken so far is settled."""
        self.flush_nowait()
        while self._sending:
            await asyncio.wait(list(self._sending))

    async def close(self, timeout_s: float | None = None) -> None:
        """Flush within ``timeout_s`` (None: no bound), then refuse new payloads. Batches still
        unsettled at the deadline are reported to ``on_failure`` as abandoned."""
        self._closed = True
        try:
            async with asyncio.timeout(timeout_s):
                await self.flush()
        except TimeoutError:
            logger.error("%d payloads not settled when the emitter closed", self._in_flight)  # noqa: TRY400
            for task in list(self._sending):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _send(self, batch: list[Mapping[str, str]]) -> None:
        try:
            checked = await self._producer.send_valid(batch, tracker_protocol=True)
        except NotProducedError as error:
            self._failed(batch, str(error))
        except asyncio.CancelledError:
            self._failed(batch, "abandoned: the emitter closed before Kafka acknowledged")
            raise
        else:
            for rejection in checked.rejections:
                reasons = "; ".join(f"{i.path} {i.code}: {i.message}" for i in rejection.issues)
                self._failed([batch[rejection.index]], f"invalid: {reasons}")
        finally:
            self._in_flight -= len(batch)

    def _failed(self, payloads: Sequence[Mapping[str, str]], reason: str) -> None:
        logger.warning("%d tracker events not produced: %s", len(payloads), reason)
        if self._on_failure is not None:
            self._on_failure(payloads, reason)
