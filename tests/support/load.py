"""A load generator with accounting: events with unique ids, and which ones the API took.

:class:`LoadGenerator` posts batches of page views to ``/v1/events`` at a steady rate from a few
concurrent workers until stopped. A 2xx acknowledges every event of the batch (Kafka has them);
a 503 is a refusal, timed from the first refusal to the next success; anything else, or no
answer within the deadline (a hang), is recorded as a failure. :func:`account` then compares
what was acknowledged with what reached the collector.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = ["Accounting", "LoadGenerator", "LoadReport", "account"]


@dataclass(slots=True)
class LoadReport:
    """What the load generator saw."""

    acknowledged: list[str] = field(default_factory=list)
    requests: int = 0
    refused: int = 0
    refused_s: float = 0.0
    failures: Counter[str] = field(default_factory=Counter)
    slowest_s: float = 0.0
    retry_after_missing: int = 0

    def summary(self) -> str:
        """One line for a failure message."""
        return (
            f"{len(self.acknowledged)} events acknowledged in {self.requests} requests, "
            f"{self.refused} refused (503) for {self.refused_s:.1f} s, "
            f"failures {dict(self.failures)}"
        )


@dataclass(frozen=True, slots=True)
class Accounting:
    """Acknowledged events against arrivals at the collector."""

    acknowledged: int
    arrived: int
    lost: int
    duplicates: int

    def summary(self) -> str:
        """One line for a test's failure message or a report."""
        return (
            f"acknowledged={self.acknowledged} arrived={self.arrived} "
            f"lost={self.lost} duplicates={self.duplicates}"
        )


def account(acknowledged: list[str], arrivals: list[str]) -> Accounting:
    """Compare acknowledged event ids with the ids that arrived (duplicates included)."""
    wanted = set(acknowledged)
    arrived = set(arrivals)
    return Accounting(
        acknowledged=len(wanted),
        arrived=len(wanted & arrived),
        lost=len(wanted - arrived),
        duplicates=len(arrivals) - len(arrived),
    )


def _batch(size: int) -> list[dict[str, Any]]:
    return [
        {
            "event_type": "page_view",
            "event_id": str(uuid.uuid4()),
            "page": {"url": "https://shop.example/chaos"},
        }
        for _ in range(size)
    ]


class LoadGenerator:
    """Posts ``batch`` events per request, ``rate_per_s`` requests a second in all, until
    :meth:`stop`; each request must be answered within ``deadline_s``. ``on_acknowledged`` is
    called with the event ids of every 2xx and the (monotonic) time it came."""

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        rate_per_s: float = 40.0,
        batch: int = 5,
        workers: int = 4,
        deadline_s: float = 15.0,
        on_acknowledged: Callable[[list[str], float], None] | None = None,
    ) -> None:
        self.url = f"{url}/v1/events"
        self.headers = {"x-api-key": api_key}
        self.interval_s = workers / rate_per_s
        self.batch = batch
        self.workers = workers
        self.deadline_s = deadline_s
        self.on_acknowledged = on_acknowledged
        self.report = LoadReport()
        self._refusing_since: float | None = None
        self._stopping = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._client: httpx.AsyncClient | None = None

    def start(self) -> None:
        """Start the workers on the running loop."""
        self._client = httpx.AsyncClient(timeout=self.deadline_s)
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.workers)]

    async def stop(self) -> LoadReport:
        """Stop sending, wait for the requests in flight, and return the report."""
        self._stopping.set()
        await asyncio.gather(*self._tasks)
        if self._client is not None:
            await self._client.aclose()
        if self._refusing_since is not None:
            self.report.refused_s += time.monotonic() - self._refusing_since
            self._refusing_since = None
        return self.report

    async def wait_for_acknowledged(self, count: int, timeout_s: float = 60.0) -> None:
        """Wait until at least ``count`` events were acknowledged (the load is flowing)."""
        deadline = time.monotonic() + timeout_s
        while len(self.report.acknowledged) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.report.summary()} within {timeout_s} s")
            await asyncio.sleep(0.05)

    async def _work(self) -> None:
        next_at = time.monotonic()
        while not self._stopping.is_set():
            await self._post_one()
            next_at += self.interval_s
            delay = next_at - time.monotonic()
            if delay > 0:
                # Pacing, not waiting for a condition: a stop request cuts it short.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)
            else:
                next_at = time.monotonic()

    async def _post_one(self) -> None:
        if self._client is None:
            raise RuntimeError("start() the load generator first")
        events = _batch(self.batch)
        report = self.report
        report.requests += 1
        started = time.monotonic()
        try:
            answer = await self._client.post(
                self.url, json={"events": events}, headers=self.headers
            )
        except httpx.TimeoutException:
            report.failures["no answer within the deadline"] += 1
            return
        except httpx.TransportError as error:
            report.failures[type(error).__name__] += 1
            return
        finally:
            report.slowest_s = max(report.slowest_s, time.monotonic() - started)
        if answer.is_success:
            eids = [event["event_id"] for event in events]
            report.acknowledged.extend(eids)
            if self.on_acknowledged is not None:
                self.on_acknowledged(eids, time.monotonic())
            if self._refusing_since is not None:
                report.refused_s += time.monotonic() - self._refusing_since
                self._refusing_since = None
        elif answer.status_code == 503:
            report.refused += 1
            if "retry-after" not in answer.headers:
                report.retry_after_missing += 1
            if self._refusing_since is None:
                self._refusing_since = started
        else:
            report.failures[f"status {answer.status_code}"] += 1
