"""Set-up failures over real sockets (TLS, DNS), and a persistent EventStore across restarts."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

import orjson
import pytest
from tracking_common.emitter import (
    AiohttpClient,
    AsyncEmitter,
    BufferFullError,
    DeliveryFailure,
    Http1Client,
    PendingEvent,
    RequestReport,
    RetryPolicy,
    StatusClass,
    StatusTable,
    Tracker,
    TransportError,
    TransportErrorKind,
)
from tracking_common.emitter.payload import POST_PATH

from tests.support.collector import RunningCollector

CLIENTS = pytest.mark.parametrize("client_type", [Http1Client, AiohttpClient])


async def _post_error(url: str, client_type: type[Http1Client | AiohttpClient]) -> TransportError:
    client = client_type(connect_timeout_s=5.0, read_timeout_s=5.0)
    try:
        await client.post(url + POST_PATH, b"{}", {"Content-Type": "application/json"})
    except TransportError as exc:
        return exc
    finally:
        await client.close()
    raise AssertionError("the request was answered")


@CLIENTS
async def test_https_to_a_plain_http_port_is_a_tls_setup_failure(
    collector: RunningCollector, client_type: type[Http1Client | AiohttpClient]
) -> None:
    port = urlsplit(collector.base_url).port
    error = await _post_error(f"https://127.0.0.1:{port}", client_type)
    assert error.kind is TransportErrorKind.TLS
    assert StatusTable.forwarder().classify_transport(error.kind) is StatusClass.SETUP
    assert StatusTable.tracker().classify_transport(error.kind) is StatusClass.RETRY


@CLIENTS
async def test_an_unresolvable_host_is_a_dns_setup_failure(
    client_type: type[Http1Client | AiohttpClient],
) -> None:
    error = await _post_error("http://collector.invalid", client_type)
    assert error.kind is TransportErrorKind.DNS
    assert StatusTable.forwarder().classify_transport(error.kind) is StatusClass.SETUP


async def test_the_emitter_reports_tls_as_setup_and_never_fails_the_event(
    collector: RunningCollector,
) -> None:
    port = urlsplit(collector.base_url).port
    failed: list[DeliveryFailure] = []
    log = RequestLog()
    emitter = AsyncEmitter(
        f"https://127.0.0.1:{port}",
        status_table=StatusTable.forwarder(),
        setup_backoff_s=0.05,
        flush_interval_s=None,
        on_failure=lambda _sent, _events, failure: failed.append(failure),
        listener=log,
    )
    Tracker(emitter).track_page_view("https://example.com/")
    emitter.flush_nowait()
    async with asyncio.timeout(10):
        await log.seen.wait()
    assert emitter.setup_failing
    assert log.setup_failures
    assert failed == []
    await emitter.close(timeout_s=0)
    assert [failure.reason.value for failure in failed] == ["abandoned"]


class FileEventStore:
    """A tiny persistent EventStore: one JSON line per event not yet settled.

    Taken events stay in the file until ``cleanup``; a new store on the same file starts with
    every event the last one did not settle, taken or not.
    """

    def __init__(self, path: Path, *, batch_size: int = 10, capacity: int = 1_000) -> None:
        self._path = path
        self._batch_size = batch_size
        self._capacity = capacity
        self._waiting: list[PendingEvent] = []
        self._taken: list[PendingEvent] = []
        if path.exists():
            for line in path.read_bytes().splitlines():
                record = orjson.loads(line)
                self._waiting.append(PendingEvent(record["data"].encode(), record["size"]))

    def _save(self) -> None:
        lines = [
            orjson.dumps({"data": bytes(event.data).decode(), "size": event.size})
            for event in (*self._taken, *self._waiting)
        ]
        self._path.write_bytes(b"".join(line + b"\n" for line in lines))

    @property
    def batch_size(self) -> int:
        return self._batch_size

    @property
    def capacity(self) -> int:
        return self._capacity

    def __len__(self) -> int:
        return len(self._waiting)

    def add(self, event: PendingEvent) -> None:
        if len(self._waiting) + len(self._taken) >= self._capacity:
            raise BufferFullError("file store is full", pending_events=0, pending_bytes=0)
        self._waiting.append(event)
        self._save()

    def full_batch(self) -> list[PendingEvent] | None:
        if len(self._waiting) < self._batch_size:
            return None
        return self.batch_of(self._batch_size)

    def batch_of(self, count: int) -> list[PendingEvent]:
        taken, self._waiting = self._waiting[:count], self._waiting[count:]
        self._taken.extend(taken)
        return taken

    def cleanup(self, batch: Sequence[PendingEvent], *, delivered: bool) -> None:
        settled = {id(event) for event in batch}
        self._taken = [event for event in self._taken if id(event) not in settled]
        self._save()

    def held_eids(self) -> list[str]:
        return [event.event_id or "" for event in (*self._taken, *self._waiting)]


class RequestLog:
    """An EmitterListener that keeps each request's status and lets a test wait for one."""

    def __init__(self) -> None:
        self.statuses: list[int | None] = []
        self.setup_failures: list[str] = []
        self.seen = asyncio.Event()

    def delivered(self, events: Sequence[PendingEvent]) -> None:
        pass

    def failed(self, events: Sequence[PendingEvent], failure: DeliveryFailure) -> None:
        pass

    def request_finished(self, report: RequestReport) -> None:
        self.statuses.append(report.status)
        self.seen.set()

    def setup_failure(self, status: int | None, message: str) -> None:
        self.setup_failures.append(message)


async def test_undelivered_events_survive_in_a_persistent_store_and_are_sent_again(
    collector: RunningCollector, tmp_path: Path
) -> None:
    path = tmp_path / "events.jsonl"
    await collector.inject({"status": 500})
    log = RequestLog()
    first = AsyncEmitter(
        collector.base_url,
        store=FileEventStore(path),
        flush_interval_s=None,
        retry=RetryPolicy.forever(base_delay_s=0.05, max_delay_s=0.2),
        listener=log,
    )
    tracker = Tracker(first, namespace="it")
    eids = [tracker.track_page_view(f"https://example.com/{n}") for n in range(25)]
    async with asyncio.timeout(10):
        await log.seen.wait()
    assert log.statuses[0] == 500
    await first.close(timeout_s=0)
    assert sorted(FileEventStore(path).held_eids()) == sorted(eids)  # nothing cleaned up

    await collector.clear_faults()
    store = FileEventStore(path)
    second = AsyncEmitter(collector.base_url, store=store, flush_interval_s=None)
    await second.start()
    await second.flush()
    await second.close()
    await collector.wait_for_count(len(eids))
    assert set(await collector.eids()) == set(eids)
    assert await collector.bad() == []
    assert store.held_eids() == []
    assert path.read_bytes() == b""
