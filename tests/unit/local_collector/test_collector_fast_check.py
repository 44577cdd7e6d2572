"""The collector's key-set check of payload_data agrees with the compiled schema."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from local_collector.validation import _plainly_valid
from tracking_common.iglu import PAYLOAD_DATA_SCHEMA, SchemaValidationError, bundled_repository
from tracking_common.record import PAYLOAD_KEYS

_KEYS = st.sampled_from(sorted(PAYLOAD_KEYS | {"stm", "color", "E"}))
_VALUES = st.text(max_size=5) | st.integers() | st.none()
_EXTRA = st.dictionaries(_KEYS, _VALUES, max_size=6)
_BASE = st.fixed_dictionaries({}, optional={"e": st.just("pv"), "p": st.just("w"), "tv": _VALUES})
_ITEMS = st.builds(lambda base, extra: {**base, **extra}, _BASE, _EXTRA) | st.integers()


def _schema_accepts(data: Any) -> bool:
    try:
        bundled_repository().validate(PAYLOAD_DATA_SCHEMA, data)
    except SchemaValidationError:
        return False
    return True


@given(st.lists(_ITEMS, max_size=4))
def test_the_key_set_check_and_the_schema_agree(data: list[Any]) -> None:
    assert _plainly_valid(data) == _schema_accepts(data)
