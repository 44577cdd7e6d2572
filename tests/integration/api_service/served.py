"""The app served by uvicorn as ``main`` configures it, over a real socket, with the in-memory
publisher: for what only a real server shows (the peer address, headers, redirects, cookies).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest
import uvicorn
from api_service.app import build_pipeline, create_app
from api_service.main import public_config

from scripts.kafka.broker import free_port
from tests.unit.api_service.api_support import FakePublisher, make_settings

PAYLOAD_DATA = "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4"
TP2 = "/com.snowplowanalytics.snowplow/tp2"

Served = Callable[..., AbstractAsyncContextManager[tuple[str, FakePublisher]]]


@asynccontextmanager
async def _served(**overrides: Any) -> AsyncIterator[tuple[str, FakePublisher]]:
    port = free_port()
    settings = make_settings(api_host="127.0.0.1", api_port=port, **overrides)
    publisher = FakePublisher()
    server = uvicorn.Server(
        public_config(settings, create_app(settings, build_pipeline(settings, publisher)))
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 10
    while not server.started:
        assert not task.done(), "the server stopped before it started"
        assert time.monotonic() < deadline, "the server did not start within 10 s"
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", publisher
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@pytest.fixture
def served() -> Served:
    """Serve the app on a free port with settings overrides: (base URL, publisher)."""
    return _served
