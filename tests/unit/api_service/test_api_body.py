"""Reading bodies: the size cap while streaming, the deadline, gzip inflation with its cap;
parsing and the depth limit (the ingest domain's, ``tracking_common.ingest``)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Sequence
from typing import Any

import pytest
from api_service.body import inflate, read_capped
from api_service.errors import (
    REFUSALS,
    BodyTimeoutError,
    BodyTooLargeError,
    InvalidGzipError,
    RequestRefusedError,
    UnsupportedEncodingError,
    answer,
)
from api_service.exchange import Receive
from hypothesis import given
from hypothesis import strategies as st
from tracking_common.deadlines import Deadlines
from tracking_common.ingest import UnreadableBodyError
from tracking_common.ingest.decoding import check_document, too_deep
from tracking_common.ingest.depth import nests_deeper


def _chunks(parts: Sequence[bytes], taken: list[bytes]) -> Receive:
    """An ASGI ``receive`` that gives ``parts`` as the body's chunks, noting each one taken."""
    pending = list(parts)

    async def receive() -> dict[str, Any]:
        part = pending.pop(0)
        taken.append(part)
        return {"type": "http.request", "body": part, "more_body": bool(pending)}

    return receive


def _status(refused: RequestRefusedError | UnreadableBodyError) -> int:
    return REFUSALS[type(refused)].status


def _nested(depth: int) -> object:
    document: object = 1
    for level in range(depth):
        document = {"a": document} if level % 2 else [document]
    return document


async def test_a_body_within_the_cap_is_read_whole() -> None:
    taken: list[bytes] = []

    body = await read_capped(_chunks([b"ab", b"cd"], taken), None, max_bytes=4)

    assert body == b"abcd"


async def test_a_body_that_stops_arriving_is_refused_at_the_deadline() -> None:
    sent = False

    async def trickle() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b'{"event_type":', "more_body": True}
        await asyncio.Event().wait()  # the client never sends the rest
        return {"type": "http.disconnect"}

    with pytest.raises(BodyTimeoutError) as refused:
        await read_capped(
            trickle, None, max_bytes=1024, deadlines=Deadlines(0.05, resolution_s=0.01)
        )

    assert (_status(refused.value), refused.value.code) == (408, "body_timeout")
    assert "14 bytes received" in refused.value.message
    assert (b"connection", b"close") in answer(refused.value, 5).headers


def test_deadlines_that_served_another_loop_still_refuse_a_stalled_body() -> None:
    # The reader takes the deadlines' loop when it is the running one; a loop since closed
    # (as between two test cases, or a restarted server) must not leave a read unguarded.
    deadlines = Deadlines(0.05, resolution_s=0.01)

    async def read_whole() -> bytes:
        return await read_capped(_chunks([b"ab"], []), None, max_bytes=4, deadlines=deadlines)

    async def read_stalled() -> bytes:
        async def stall() -> dict[str, Any]:
            await asyncio.Event().wait()
            return {"type": "http.disconnect"}

        async with asyncio.timeout(5):  # a TimeoutError, not the 408, if the read is unguarded
            return await read_capped(stall, None, max_bytes=4, deadlines=deadlines)

    assert asyncio.run(read_whole()) == b"ab"
    with pytest.raises(BodyTimeoutError):
        asyncio.run(read_stalled())


async def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    taken: list[bytes] = []

    with pytest.raises(BodyTooLargeError) as refused:
        await read_capped(_chunks([b"x"], taken), "5", max_bytes=4)

    assert (_status(refused.value), refused.value.code) == (413, "payload_too_large")
    assert taken == []


async def test_a_streamed_body_is_refused_at_the_chunk_that_passes_the_cap() -> None:
    taken: list[bytes] = []

    with pytest.raises(BodyTooLargeError) as refused:
        await read_capped(_chunks([b"abc", b"def", b"ghi"], taken), None, max_bytes=4)

    assert _status(refused.value) == 413
    assert taken == [b"abc", b"def"]  # the rest is never read


def test_identity_and_no_encoding_pass_through() -> None:
    assert inflate(b"{}", None, 10) == b"{}"
    assert inflate(b"{}", " Identity ", 10) == b"{}"


@pytest.mark.parametrize("encoding", ["gzip", "GZIP", "x-gzip"])
def test_gzip_is_inflated(encoding: str) -> None:
    assert inflate(gzip.compress(b'{"a": 1}'), encoding, 100) == b'{"a": 1}'


def test_inflation_up_to_the_cap_is_allowed_and_one_byte_more_is_413() -> None:
    exact = gzip.compress(b"x" * 1000)

    assert inflate(exact, "gzip", 1000) == b"x" * 1000
    with pytest.raises(BodyTooLargeError) as refused:
        inflate(exact, "gzip", 999)
    assert _status(refused.value) == 413


def test_a_bomb_is_refused_without_inflating_it_whole() -> None:
    bomb = gzip.compress(b"\0" * 20_000_000)  # about 20 KB on the wire

    with pytest.raises(BodyTooLargeError) as refused:
        inflate(bomb, "gzip", 1024 * 1024)

    assert (_status(refused.value), refused.value.code) == (413, "payload_too_large")


def test_every_gzip_member_is_inflated_and_the_cap_spans_them() -> None:
    body = gzip.compress(b'{"a": ') + gzip.compress(b"1}")

    assert inflate(body, "gzip", 100) == b'{"a": 1}'
    with pytest.raises(BodyTooLargeError) as refused:
        inflate(gzip.compress(b"x" * 600) + gzip.compress(b"x" * 600), "gzip", 1000)
    assert _status(refused.value) == 413


@pytest.mark.parametrize(
    "body",
    [
        b"not gzip at all",
        gzip.compress(b'{"a": 1}')[:-6],  # truncated
        gzip.compress(b'{"a": 1}') + b"trailing bytes",
    ],
    ids=["garbage", "truncated", "trailing"],
)
def test_invalid_gzip_is_400(body: bytes) -> None:
    with pytest.raises(InvalidGzipError) as refused:
        inflate(body, "gzip", 1000)

    assert (_status(refused.value), refused.value.code) == (400, "invalid_gzip")


@pytest.mark.parametrize("encoding", ["br", "deflate", "zstd", "gzip, br"])
def test_other_encodings_are_415(encoding: str) -> None:
    with pytest.raises(UnsupportedEncodingError) as refused:
        inflate(b"{}", encoding, 100)

    assert (_status(refused.value), refused.value.code) == (415, "unsupported_encoding")


def check_depth(document: object, max_depth: int) -> None:
    """The depth limit as the ingest domain refuses a body."""
    if nests_deeper(document, max_depth):
        raise too_deep(max_depth)


def test_depth_is_counted_in_containers() -> None:
    check_depth(_nested(5), 5)
    check_depth("scalar", 1)
    with pytest.raises(UnreadableBodyError) as refused:
        check_depth(_nested(6), 5)
    assert (_status(refused.value), refused.value.code) == (400, "too_deep")


def test_depth_of_a_very_deep_document_is_checked_without_recursion() -> None:
    with pytest.raises(UnreadableBodyError):
        check_depth(_nested(100_000), 256)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"", "empty_body"),
        (b"{", "invalid_json"),
        (b"\xff", "invalid_json"),
        (b"[[[1]]]", "too_deep"),
    ],
)
def test_unreadable_body_refusals(body: bytes, code: str) -> None:
    with pytest.raises(UnreadableBodyError) as refused:
        check_document(body, max_depth=2)

    assert (_status(refused.value), refused.value.code) == (400, code)


def _depth(value: object) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=2), inner),
    max_leaves=30,
)


@given(_JSON, st.integers(1, 8))
def test_depth_check_agrees_with_a_recursive_count(document: object, max_depth: int) -> None:
    refused = False
    try:
        check_depth(document, max_depth)
    except UnreadableBodyError:
        refused = True

    assert refused == (_depth(document) > max_depth)
