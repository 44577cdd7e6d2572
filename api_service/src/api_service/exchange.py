"""One HTTP exchange on the ingest routes, at the ASGI level: the request's head read once, and
the answer encoded once.

The ingest routes are served without a framework's request object (``api_service.routes``):
the headers are read into a dict in one pass (the first of repeated names wins, as Starlette's
``Headers.get``), the body is read once into bytes (``api_service.body``), and an answer is its
status, body bytes and header pairs, sent as two ASGI messages.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qsl

import orjson

__all__ = [
    "JSON",
    "Answer",
    "Exchange",
    "Receive",
    "Send",
    "json_answer",
    "read_headers",
    "send_answer",
]

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
HeaderPairs = list[tuple[bytes, bytes]]

JSON: Final = b"application/json"


@dataclass(slots=True)
class Answer:
    """A response: status, body and headers (content type included, length added on sending)."""

    status: int
    body: bytes = b""
    headers: HeaderPairs = field(default_factory=list)


def json_answer(status: int, document: Any, headers: HeaderPairs | None = None) -> Answer:
    """A JSON answer, encoded with orjson."""
    pairs: HeaderPairs = [(b"content-type", JSON)]
    if headers:
        pairs += headers
    return Answer(status, orjson.dumps(document), pairs)


async def send_answer(send: Send, answer: Answer) -> None:
    """Send ``answer``: its start (with the body's length) and its body."""
    answer.headers.append((b"content-length", str(len(answer.body)).encode()))
    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
    await send({"type": "http.response.body", "body": answer.body})


def read_headers(raw: list[tuple[bytes, bytes]]) -> dict[str, str]:
    """The request headers by (lower-case) name; of a repeated name, the first."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in reversed(raw)}


@dataclass(slots=True)
class Exchange:
    """What one request carries through the pipeline."""

    scope: MutableMapping[str, Any]
    receive: Receive
    route: str
    headers: dict[str, str]
    request_id: str
    client: str = ""  # key fingerprint, else the client IP; set once admitted
    set_cookie: str | None = None  # the network user id cookie to send with the answer

    @property
    def peer(self) -> str | None:
        """The socket's peer address, as the server reports it."""
        client = self.scope.get("client")
        return None if client is None else str(client[0])

    def forwarded_for(self) -> list[str]:
        """Every ``X-Forwarded-For`` header's value (the header may repeat)."""
        return [
            value.decode("latin-1")
            for key, value in self.scope["headers"]
            if key == b"x-forwarded-for"
        ]

    def query(self) -> dict[str, str]:
        """The query string's fields (of a repeated one, the last, as Starlette's dict)."""
        query: bytes = self.scope.get("query_string", b"")
        return dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
