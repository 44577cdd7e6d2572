"""In-memory fakes of the emitter's ports, for tests of the emitter and of its callers.

``FakeHttpClient`` answers from a handler (default: 200) and records every request;
``FakeSleep`` records the delays asked for and returns at once, so backoff costs no time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tracking_common.emitter.errors import TransportError
from tracking_common.emitter.ports import HttpResponse

__all__ = ["FakeHttpClient", "FakeSleep", "SentRequest"]


@dataclass(frozen=True, slots=True)
class SentRequest:
    """One request the fake received."""

    method: str
    url: str
    body: bytes = b""
    query: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        """The POST body, decoded."""
        return orjson.loads(self.body)

    @property
    def events(self) -> list[dict[str, str]]:
        """The payloads a POST carried."""
        data: list[dict[str, str]] = self.json()["data"]
        return data


Handler = Callable[[SentRequest], Awaitable[HttpResponse | TransportError]]


async def _ok(_: SentRequest) -> HttpResponse:
    return HttpResponse(200)


class FakeHttpClient:
    """An HttpClient whose answers come from ``handler`` (async: it may wait on an event)."""

    def __init__(self, handler: Handler = _ok) -> None:
        self.handler = handler
        self.requests: list[SentRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.closed = False

    @classmethod
    def scripted(cls, *answers: int | TransportError | HttpResponse) -> FakeHttpClient:
        """Answer the first requests with ``answers`` in order, then 200."""
        queue = list(answers)

        async def handler(_: SentRequest) -> HttpResponse | TransportError:
            if not queue:
                return HttpResponse(200)
            answer = queue.pop(0)
            return HttpResponse(answer) if isinstance(answer, int) else answer

        return cls(handler)

    @classmethod
    def held(cls, gate: asyncio.Event) -> FakeHttpClient:
        """Answer every request 200 once ``gate`` is set (requests stay in flight till then)."""

        async def handler(_: SentRequest) -> HttpResponse:
            await gate.wait()
            return HttpResponse(200)

        return cls(handler)

    async def _answer(self, request: SentRequest) -> HttpResponse:
        self.requests.append(request)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            answer = await self.handler(request)
        finally:
            self.in_flight -= 1
        if isinstance(answer, TransportError):
            raise answer
        return answer

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> HttpResponse:
        """Record and answer a POST."""
        return await self._answer(SentRequest("POST", url, body=body, headers=dict(headers)))

    async def get(self, url: str, query: str) -> HttpResponse:
        """Record and answer a GET."""
        return await self._answer(SentRequest("GET", url, query=query))

    async def close(self) -> None:
        """Mark closed."""
        self.closed = True


class FakeSleep:
    """An injectable sleep that records delays and only yields to the loop."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        await asyncio.sleep(0)
