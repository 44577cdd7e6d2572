"""``Http1Client`` against a scripted local server: keep-alive, framing, pooling, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from tracking_common.emitter import Http1Client, TransportError, TransportErrorKind
from tracking_common.emitter.http1_connection import _MAX_PARSED_HEADS, _PARSED_HEADS, _parse

HEADERS = {"Content-Type": "application/json; charset=utf-8"}
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


@dataclass
class Received:
    head: str
    body: bytes


@dataclass
class Server:
    """Answers each request with ``answer(request_number)``; None: say nothing."""

    answer: Callable[[int], bytes | None] = lambda _: OK
    close_after_answer: bool = False
    requests: list[Received] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    url: str = ""

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                length = 0
                for line in head.split("\r\n"):
                    if line.lower().startswith("content-length:"):
                        length = int(line.split(":")[1])
                body = await reader.readexactly(length)
                self.requests.append(Received(head, body))
                answer = self.answer(len(self.requests))
                if answer is None:
                    await asyncio.sleep(0.01)  # let the request overlap its peers
                    continue
                await asyncio.sleep(0.001)
                writer.write(answer)
                await writer.drain()
                if self.close_after_answer:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open_now -= 1
            writer.close()


@pytest.fixture
async def served() -> AsyncIterator[Server]:
    server = Server()
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    server.url = f"http://127.0.0.1:{port}/com.snowplowanalytics.snowplow/tp2"
    async with listener:
        yield server
        listener.close()


async def test_requests_share_one_kept_alive_connection(served: Server) -> None:
    client = Http1Client()
    for n in range(3):
        response = await client.post(served.url, b'{"n":%d}' % n, HEADERS)
        assert response.status == 200
    await client.close()
    assert served.connections == 1
    assert [r.body for r in served.requests] == [b'{"n":0}', b'{"n":1}', b'{"n":2}']
    head = served.requests[0].head
    assert head.startswith("POST /com.snowplowanalytics.snowplow/tp2 HTTP/1.1\r\n")
    assert "Content-Type: application/json; charset=utf-8\r\n" in head
    assert "Content-Length: 7\r\n" in head
    assert f"Host: {served.url.split('/')[2]}\r\n" in head


async def test_a_post_head_follows_the_headers_given_each_time(served: Server) -> None:
    client = Http1Client()
    headers = dict(HEADERS)
    await client.post(served.url, b"{}", headers)
    headers["X-Batch"] = "2"  # the same dict, changed
    await client.post(served.url, b"{}", headers)
    await client.post(served.url, b"{}", HEADERS)
    await client.close()
    heads = [request.head for request in served.requests]
    assert ["X-Batch: 2" in head for head in heads] == [False, True, False]
    assert all("Content-Type: application/json; charset=utf-8" in head for head in heads)


async def test_chunked_and_interim_answers_and_header_names(served: Server) -> None:
    served.answer = lambda _: (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 503 Service Unavailable\r\nretry-after: 7\r\nTransfer-Encoding: chunked\r\n"
        b"\r\n4\r\nbusy\r\n3;x=y\r\n...\r\n0\r\n\r\n"
    )
    client = Http1Client()
    for _ in range(2):
        response = await client.post(served.url, b"{}", HEADERS)
        assert response.status == 503
        assert response.headers.get("Retry-After") == "7"
    await client.close()
    assert served.connections == 1


async def test_connection_close_and_bodies_that_run_to_the_close(served: Server) -> None:
    served.close_after_answer = True
    answers = [
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\nbody until the close",
        b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n",
    ]
    served.answer = lambda n: answers[n - 1]
    client = Http1Client()
    statuses = [(await client.post(served.url, b"{}", HEADERS)).status for _ in answers]
    await client.close()
    assert statuses == [200, 200, 204]
    assert served.connections == 3


async def test_get_sends_the_query(served: Server) -> None:
    client = Http1Client()
    url = served.url.replace("/com.snowplowanalytics.snowplow/tp2", "/i")
    assert (await client.get(url, "e=pv&eid=1")).status == 200
    await client.close()
    assert served.requests[0].head.startswith("GET /i?e=pv&eid=1 HTTP/1.1\r\n")


async def test_no_more_connections_than_the_pool(served: Server) -> None:
    client = Http1Client(pool_size=2)
    answers = await asyncio.gather(*(client.post(served.url, b"{}", HEADERS) for _ in range(8)))
    await client.close()
    assert {answer.status for answer in answers} == {200}
    assert served.most_open <= 2


async def test_no_answer_in_time_is_a_timeout(served: Server) -> None:
    served.answer = lambda _: None
    client = Http1Client(read_timeout_s=0.05)
    with pytest.raises(TransportError) as caught:
        await client.post(served.url, b"{}", HEADERS)
    assert caught.value.kind is TransportErrorKind.TIMEOUT
    await client.close()


async def test_a_total_timeout_bounds_the_whole_request(served: Server) -> None:
    served.answer = lambda _: None
    client = Http1Client(total_timeout_s=0.05)
    with pytest.raises(TransportError) as caught:
        await client.post(served.url, b"{}", HEADERS)
    assert caught.value.kind is TransportErrorKind.TIMEOUT
    await client.close()


@pytest.mark.parametrize(
    "answer",
    [
        b"",
        b"SMTP ready\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
async def test_a_closed_or_garbled_answer_is_a_dropped_connection(
    served: Server, answer: bytes
) -> None:
    served.answer = lambda _: answer
    served.close_after_answer = True
    client = Http1Client(read_timeout_s=5.0)
    with pytest.raises(TransportError) as caught:
        await client.post(served.url, b"{}", HEADERS)
    assert caught.value.kind is TransportErrorKind.DROPPED
    # The next request gets a fresh connection.
    served.answer = lambda _: OK
    assert (await client.post(served.url, b"{}", HEADERS)).status == 200
    await client.close()


async def test_a_refused_connection_is_a_connect_error() -> None:
    listener = await asyncio.start_server(lambda _r, _w: None, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    listener.close()
    await listener.wait_closed()
    client = Http1Client()
    with pytest.raises(TransportError) as caught:
        await client.post(f"http://127.0.0.1:{port}/", b"{}", HEADERS)
    assert caught.value.kind is TransportErrorKind.CONNECT
    await client.close()


async def test_a_closed_client_refuses_and_a_bad_url_is_refused(served: Server) -> None:
    client = Http1Client()
    with pytest.raises(ValueError, match="not an http"):
        await client.post("ftp://collector/", b"{}", HEADERS)
    await client.close()
    await client.close()
    with pytest.raises(RuntimeError):
        await client.post(served.url, b"{}", HEADERS)


async def test_an_idle_connection_closed_by_the_server_or_too_old_is_not_reused(
    served: Server,
) -> None:
    served.close_after_answer = True  # answers keep-alive, then closes anyway
    client = Http1Client()
    for _ in range(2):
        assert (await client.post(served.url, b"{}", HEADERS)).status == 200
        await asyncio.sleep(0.05)  # the close arrives while the connection is idle
    await client.close()
    assert served.connections == 2

    served.close_after_answer = False
    before = served.connections
    stale = Http1Client(keepalive_s=0.0)
    for _ in range(2):
        assert (await stale.post(served.url, b"{}", HEADERS)).status == 200
        await asyncio.sleep(0.01)
    await stale.close()
    assert served.connections - before == 2


def test_a_head_seen_before_is_reused_read_only_and_each_body_framed_on_its_own() -> None:
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nRetry-After:  5 \r\n\r\n"
    first = _parse(bytearray(head + b"ok"), at_eof=False)
    second = _parse(bytearray(head + b"o"), at_eof=False)
    assert not isinstance(first, TransportError | None)
    assert not isinstance(second, TransportError | None)
    assert (first.status, first.end) == (200, len(head) + 2)
    assert (second.status, second.end) == (200, -1)  # the same head, its body not all here
    assert first.headers == {"Content-Length": "2", "Retry-After": "5"}
    with pytest.raises(TypeError):
        first.headers["Retry-After"] = "0"  # type: ignore[index]  # shared: read-only
    for n in range(_MAX_PARSED_HEADS + 5):
        _parse(bytearray(b"HTTP/1.1 204 No\r\nX-N: %d\r\n\r\n" % n), at_eof=False)
    assert len(_PARSED_HEADS) <= _MAX_PARSED_HEADS
    garbled = _parse(bytearray(b"HTTX 200\r\n\r\n"), at_eof=False)
    assert isinstance(garbled, TransportError)


async def test_a_kept_alive_connection_times_each_request_from_its_own_start() -> None:
    # The answer timer outlives an answered request; it must neither fail the next request
    # at the old deadline nor let it run past its own.
    delays = iter([0.0, 0.6, None])
    handled = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                delay = next(delays)
                if delay is None:
                    continue  # never answered
                await asyncio.sleep(delay)
                writer.write(OK)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            handled.set()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    url = f"http://127.0.0.1:{port}/com.snowplowanalytics.snowplow/tp2"
    client = Http1Client(read_timeout_s=1.0)
    async with listener:
        assert (await client.post(url, b"{}", HEADERS)).status == 200
        await asyncio.sleep(0.6)
        # Answered 1.2 s after the first request began, 0.6 s after its own start.
        assert (await client.post(url, b"{}", HEADERS)).status == 200
        with pytest.raises(TransportError) as caught:
            await client.post(url, b"{}", HEADERS)
        assert caught.value.kind is TransportErrorKind.TIMEOUT
        await client.close()
        await asyncio.wait_for(handled.wait(), 5)  # the server's side closed too
        listener.close()
