"""Baseline ``bare_asgi_rps``: a bare ASGI callable that reads the body and answers small JSON.

The most any Python app can do per request on this uvicorn: no framework, no routing, no
validation. ``python -m bench.bare_asgi --port 8000``.
"""

from __future__ import annotations

from starlette.types import Receive, Scope, Send

from bench.baseline_server import serve

ANSWER = b'{"accepted":1}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(ANSWER))]


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Read the whole body, answer 200 with ``ANSWER``."""
    if scope["type"] != "http":
        return
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": ANSWER})


if __name__ == "__main__":
    serve(app)
