"""The emitter core's CPU per event, by stage, for ``bench.bench_emitter``'s page views.

Each stage runs the benchmark's events (a page view with one entity, batch size 50, a
400-event buffer and ``wait_for_room``, on uvloop) and is timed with ``process_time_ns``
(this process's CPU: what the shared machine gives others does not count), best of
``--rounds``, in microseconds per event. Each figure includes the ones above it:

- ``inputs``: the benchmark's own arguments (the URL and the entity);
- ``tracker``: ``Tracker.track_page_view`` into an emitter that keeps nothing (building
  the event's bytes);
- ``emitter, no I/O``: through ``AsyncEmitter`` whose client answers 200 at once (intake,
  batching, bodies, settling, spans and metrics, the producer's ``wait_for_room``);
- ``Http1Client`` / ``AiohttpClient``: to the count-only local collector (started here, in
  its own process, so its CPU is not counted).

    uv run python -m bench.emitter_stages [--events 20000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

import uvloop
from tracking_common.emitter import (
    AiohttpClient,
    AsyncEmitter,
    Http1Client,
    HttpClient,
    HttpResponse,
    Tracker,
)

from bench.bench_emitter import BATCH_SIZE, IN_FLIGHT, _entity, _start_collector, _url

TITLE, REFERRER = "Product", "https://search.example"


class _Discard:
    """An emitter that takes events and keeps nothing."""

    def add(self, payload: Mapping[str, str], *, tag: Any = None) -> None:
        pass

    def add_json(self, data: bytes, *, tag: Any = None) -> None:
        pass

    def intake(self) -> Callable[[bytes], None]:
        return self._take

    def _take(self, data: bytes) -> None:
        pass

    def flush_nowait(self) -> None:
        pass

    async def flush(self) -> None:
        pass

    async def close(self, timeout_s: float | None = None) -> None:
        pass


class _Answers200:
    """An HttpClient that answers 200 at once."""

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpResponse:
        return HttpResponse(200)

    async def get(self, url: str, query: str) -> HttpResponse:
        return HttpResponse(200)

    async def close(self) -> None:
        pass


def _inputs(events: int) -> int:
    start = time.process_time_ns()
    for n in range(events):
        _url(n)
        [_entity(n)]
    return time.process_time_ns() - start


def _tracker(events: int) -> int:
    tracker = Tracker(_Discard(), namespace="bench", app_id="bench")
    start = time.process_time_ns()
    for n in range(events):
        tracker.track_page_view(_url(n), title=TITLE, referrer=REFERRER, entities=[_entity(n)])
    return time.process_time_ns() - start


async def _through(url: str, client: HttpClient, events: int) -> int:
    emitter = AsyncEmitter(
        url,
        batch_size=BATCH_SIZE,
        max_in_flight=IN_FLIGHT,
        buffer_capacity=BATCH_SIZE * IN_FLIGHT * 2,
        client=client,
    )
    tracker = Tracker(emitter, namespace="bench", app_id="bench")
    start = time.process_time_ns()
    for n in range(events):
        await emitter.wait_for_room()
        tracker.track_page_view(_url(n), title=TITLE, referrer=REFERRER, entities=[_entity(n)])
    await emitter.close()
    elapsed = time.process_time_ns() - start
    await client.close()
    return elapsed


def _on_loop(make: Callable[[], Coroutine[Any, Any, int]]) -> Callable[[int], int]:
    return lambda _events: uvloop.run(make())


def main() -> None:
    """Print each stage's best CPU per event."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    events = args.events
    process, base_url = _start_collector()
    try:
        stages: dict[str, Callable[[int], int]] = {
            "inputs": _inputs,
            "tracker": _tracker,
            "emitter, no I/O": _on_loop(lambda: _through(base_url, _Answers200(), events)),
            "Http1Client": _on_loop(lambda: _through(base_url, Http1Client(), events)),
            "AiohttpClient": _on_loop(lambda: _through(base_url, AiohttpClient(), events)),
        }
        best = {name: float("inf") for name in stages}
        for _ in range(args.rounds):  # alternated, so load that comes and goes hits all
            for name, stage in stages.items():
                best[name] = min(best[name], stage(events) / events / 1000)
    finally:
        process.terminate()
        process.wait(timeout=10)
    for name, us in best.items():
        print(f"  {name:<18} {us:6.2f} us of CPU an event")


if __name__ == "__main__":
    main()
