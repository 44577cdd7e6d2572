"""The local collector for tests and benchmarks: a real server on a real socket.

``start_collector()`` runs the collector's app on its own thread and event loop (port 0 picks a
free port) and yields a :class:`RunningCollector` whose async helpers talk to it over HTTP. The
``collector`` fixture gives each test a fresh one, so tests never see each other's events or
faults.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from local_collector.app import build_app

__all__ = ["RunningCollector", "collector", "start_collector"]

_POLL_INTERVAL_S = 0.05
_STOP_TIMEOUT_S = 15.0


class RunningCollector:
    """Async helpers over a running collector's Micro-style API (``base_url``)."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    async def _call(
        self, method: str, path: str, body: Any = None, session: aiohttp.ClientSession | None = None
    ) -> Any:
        if session is None:
            async with aiohttp.ClientSession() as owned:
                return await self._call(method, path, body, owned)
        async with session.request(method, self.base_url + path, json=body) as response:
            payload = await response.json()
            if response.status >= 300:
                raise AssertionError(f"{method} {path} answered {response.status}: {payload}")
            return payload

    async def inject(self, fault: dict[str, Any]) -> None:
        """Add a fault (see ``docs/local_collector.md``); raise if the collector refuses it."""
        await self._call("POST", "/micro/faults", fault)

    async def faults(self) -> list[dict[str, Any]]:
        """The faults in force."""
        body = await self._call("GET", "/micro/faults")
        faults: list[dict[str, Any]] = body["faults"]
        return faults

    async def clear_faults(self) -> None:
        """Remove every fault."""
        await self._call("DELETE", "/micro/faults")

    async def reset(self) -> None:
        """Forget every event and clear every fault."""
        await self._call("POST", "/micro/reset")

    async def totals(self) -> dict[str, int]:
        """``{"total", "good", "bad"}`` since the last reset."""
        totals: dict[str, int] = await self._call("GET", "/micro/all")
        return totals

    async def count(self) -> int:
        """Good events received since the last reset."""
        body = await self._call("GET", "/micro/good/count")
        return int(body["count"])

    async def eids(self) -> list[str]:
        """Event ids of the kept good events, in arrival order, duplicates included."""
        eids: list[str] = await self._call("GET", "/micro/eids")
        return eids

    async def good(self, **filters: str | int) -> list[dict[str, Any]]:
        """Kept good events; filters: event_type, app_id, eid, schema, limit, offset."""
        query = "&".join(f"{key}={value}" for key, value in filters.items())
        entries: list[dict[str, Any]] = await self._call(
            "GET", "/micro/good" + (f"?{query}" if query else "")
        )
        return entries

    async def bad(self) -> list[dict[str, Any]]:
        """Kept bad requests and events, with the reason."""
        entries: list[dict[str, Any]] = await self._call("GET", "/micro/bad")
        return entries

    async def wait_for_count(self, n: int, timeout_s: float = 20) -> int:
        """Poll until ``n`` good events arrived; return the count, or raise TimeoutError."""
        deadline = time.monotonic() + timeout_s
        async with aiohttp.ClientSession() as session:
            while True:
                body = await self._call("GET", "/micro/good/count", session=session)
                count = int(body["count"])
                if count >= n:
                    return count
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"collector has {count} good events after {timeout_s}s, not {n}"
                    )
                await asyncio.sleep(_POLL_INTERVAL_S)


async def _serve(runner: web.AppRunner, host: str, port: int) -> int:
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    address = runner.addresses[0]
    bound: int = address[1]
    return bound


async def _stop(runner: web.AppRunner) -> None:
    await runner.cleanup()
    # Handlers still sleeping in a delay fault would otherwise die with the loop.
    current = asyncio.current_task()
    pending = [task for task in asyncio.all_tasks() if task is not current]
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


@contextmanager
def start_collector(
    port: int = 0,
    *,
    count_only: bool = False,
    max_events: int = 100_000,
    host: str = "127.0.0.1",
) -> Iterator[RunningCollector]:
    """Serve a fresh collector on its own thread and loop until the block exits."""
    app = build_app(max_events=max_events, count_only=count_only)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="local-collector", daemon=True)
    thread.start()
    try:
        bound = asyncio.run_coroutine_threadsafe(_serve(runner, host, port), loop).result(10)
        yield RunningCollector(f"http://{host}:{bound}")
    finally:
        try:
            asyncio.run_coroutine_threadsafe(_stop(runner), loop).result(_STOP_TIMEOUT_S)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(_STOP_TIMEOUT_S)
            loop.close()


@pytest.fixture
def collector() -> Iterator[RunningCollector]:
    """A fresh collector per test, over a real socket."""
    with start_collector() as running:
        yield running
