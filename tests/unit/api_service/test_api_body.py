"""Reading bodies: the size cap while streaming, gzip inflation with its cap, JSON and depth."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Sequence

import pytest
from api_service.body import check_depth, inflate, parse_json, read_capped
from api_service.errors import RequestRefusedError
from hypothesis import given
from hypothesis import strategies as st


async def _chunks(parts: Sequence[bytes], taken: list[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        taken.append(part)
        yield part


def _nested(depth: int) -> object:
    document: object = 1
    for level in range(depth):
        document = {"a": document} if level % 2 else [document]
    return document


async def test_a_body_within_the_cap_is_read_whole() -> None:
    taken: list[bytes] = []

    body = await read_capped(_chunks([b"ab", b"cd"], taken), {}, max_bytes=4)

    assert body == b"abcd"


async def test_a_body_that_stops_arriving_is_refused_at_the_deadline() -> None:
    async def trickle() -> AsyncIterator[bytes]:
        yield b'{"event_type":'
        await asyncio.Event().wait()  # the client never sends the rest
        yield b"never"

    with pytest.raises(RequestRefusedError) as refused:
        await read_capped(trickle(), {}, max_bytes=1024, timeout_s=0.05)

    assert (refused.value.status, refused.value.code) == (408, "body_timeout")
    assert "14 bytes received" in refused.value.message
    assert refused.value.headers == {"connection": "close"}


async def test_a_declared_length_over_the_cap_is_refused_before_reading() -> None:
    taken: list[bytes] = []

    with pytest.raises(RequestRefusedError) as refused:
        await read_capped(_chunks([b"x"], taken), {"content-length": "5"}, max_bytes=4)

    assert (refused.value.status, refused.value.code) == (413, "payload_too_large")
    assert taken == []


async def test_a_streamed_body_is_refused_at_the_chunk_that_passes_the_cap() -> None:
    taken: list[bytes] = []

    with pytest.raises(RequestRefusedError) as refused:
        await read_capped(_chunks([b"abc", b"def", b"ghi"], taken), {}, max_bytes=4)

    assert refused.value.status == 413
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
    with pytest.raises(RequestRefusedError) as refused:
        inflate(exact, "gzip", 999)
    assert refused.value.status == 413


def test_a_bomb_is_refused_without_inflating_it_whole() -> None:
    bomb = gzip.compress(b"\0" * 20_000_000)  # about 20 KB on the wire

    with pytest.raises(RequestRefusedError) as refused:
        inflate(bomb, "gzip", 1024 * 1024)

    assert (refused.value.status, refused.value.code) == (413, "payload_too_large")


def test_every_gzip_member_is_inflated_and_the_cap_spans_them() -> None:
    body = gzip.compress(b'{"a": ') + gzip.compress(b"1}")

    assert inflate(body, "gzip", 100) == b'{"a": 1}'
    with pytest.raises(RequestRefusedError) as refused:
        inflate(gzip.compress(b"x" * 600) + gzip.compress(b"x" * 600), "gzip", 1000)
    assert refused.value.status == 413


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
    with pytest.raises(RequestRefusedError) as refused:
        inflate(body, "gzip", 1000)

    assert (refused.value.status, refused.value.code) == (400, "invalid_gzip")


@pytest.mark.parametrize("encoding", ["br", "deflate", "zstd", "gzip, br"])
def test_other_encodings_are_415(encoding: str) -> None:
    with pytest.raises(RequestRefusedError) as refused:
        inflate(b"{}", encoding, 100)

    assert (refused.value.status, refused.value.code) == (415, "unsupported_encoding")


def test_depth_is_counted_in_containers() -> None:
    check_depth(_nested(5), 5)
    check_depth("scalar", 1)
    with pytest.raises(RequestRefusedError) as refused:
        check_depth(_nested(6), 5)
    assert (refused.value.status, refused.value.code) == (400, "too_deep")


def test_depth_of_a_very_deep_document_is_checked_without_recursion() -> None:
    with pytest.raises(RequestRefusedError):
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
def test_parse_json_refusals(body: bytes, code: str) -> None:
    with pytest.raises(RequestRefusedError) as refused:
        parse_json(body, max_depth=2)

    assert (refused.value.status, refused.value.code) == (400, code)


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
    except RequestRefusedError:
        refused = True

    assert refused == (_depth(document) > max_depth)
