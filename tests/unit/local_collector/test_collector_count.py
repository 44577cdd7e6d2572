"""The count-only mode's one-pass check: it counts what conforms and sends the rest to the full
validation (which names the fault)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from local_collector.validation import PAYLOAD_DATA_URI, count_plain_events
from tracking_common.iglu import PAYLOAD_DATA_SCHEMA, SchemaValidationError, bundled_repository
from tracking_common.record import PAYLOAD_KEYS

_KEYS = st.sampled_from(sorted(PAYLOAD_KEYS | {"stm", "color"}))
_INTS = st.integers(-(2**63), 2**63 - 1)  # what orjson writes
_VALUES = st.text(max_size=5) | _INTS | st.none()
_BASE = st.fixed_dictionaries({}, optional={"e": st.just("pv"), "p": st.just("w"), "tv": _VALUES})
_ITEMS = (
    st.builds(
        lambda base, extra: {**base, **extra}, _BASE, st.dictionaries(_KEYS, _VALUES, max_size=6)
    )
    | _INTS
)


def _body(data: Any, **extra: Any) -> bytes:
    return orjson.dumps({"schema": PAYLOAD_DATA_URI, "data": data, **extra})


def _has_required_strings(item: Any) -> bool:
    return isinstance(item, dict) and all(isinstance(item.get(k), str) for k in ("tv", "p", "e"))


@given(st.lists(_ITEMS, max_size=4))
def test_counts_exactly_the_bodies_of_objects_with_string_tv_p_e(data: list[Any]) -> None:
    expected = len(data) if data and all(map(_has_required_strings, data)) else None
    assert count_plain_events(_body(data)) == expected


@given(st.lists(_ITEMS, min_size=1, max_size=4))
def test_every_body_the_schema_accepts_is_counted(data: list[Any]) -> None:
    try:
        bundled_repository().validate(PAYLOAD_DATA_SCHEMA, data)
    except SchemaValidationError:
        return
    assert count_plain_events(_body(data)) == len(data)


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b'{"schema":"' + PAYLOAD_DATA_URI.encode() + b'","data":[{"e":"pv","p":"w","tv":"t"}]',
        orjson.dumps({"schema": "iglu:com.acme/other/jsonschema/1-0-0", "data": [{}]}),
        _body([{"e": "pv", "p": "w", "tv": "t"}], extra=1),
        orjson.dumps({"data": [{"e": "pv", "p": "w", "tv": "t"}]}),
        _body([]),
        _body({"e": "pv", "p": "w", "tv": "t"}),
    ],
    ids=["not-json", "truncated", "other-schema", "extra-key", "no-schema", "empty", "not-array"],
)
def test_what_it_does_not_vouch_for_takes_the_full_path(body: bytes) -> None:
    assert count_plain_events(body) is None
