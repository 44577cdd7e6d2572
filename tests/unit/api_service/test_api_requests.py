"""Request-level edges: a client hanging up mid-body, and oversized request ids."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from tests.unit.api_service.api_support import KEY, Api

Message = dict[str, Any]


async def _call(api: Api, received: list[Message], headers: list[tuple[bytes, bytes]]) -> Message:
    """Drive the ASGI app with ``received`` as the client's messages; return the start message."""
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> Message:
        return received.pop(0) if received else {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/events",
        "raw_path": b"/v1/events",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"api.test"), (b"x-api-key", KEY.encode()), *headers],
        "client": ("127.0.0.1", 50000),
        "server": ("api.test", 80),
    }
    await api.app(scope, receive, send)
    return dict(sent[0])


async def test_a_client_hanging_up_mid_body_is_499_not_a_server_error(api: Api) -> None:
    received: list[Message] = [
        {"type": "http.request", "body": b'{"event_type": "page_view", ', "more_body": True},
        {"type": "http.disconnect"},
    ]

    start = await _call(api, received, [])

    assert start["status"] == 499
    assert api.publisher.calls == 0
    assert api.pipeline.in_flight == 0


async def test_a_long_request_id_is_cut_to_what_bad_events_keep(api: Api) -> None:
    request_id = "r" * 1000

    answer = await api.client.post(
        "/v1/events", content=b"{", headers={"x-api-key": KEY, "x-request-id": request_id}
    )

    assert answer.status_code == 400
    assert answer.headers["x-request-id"] == "r" * 128
    [bad] = api.publisher.on("events_bad")
    assert bad.key == b"r" * 128
