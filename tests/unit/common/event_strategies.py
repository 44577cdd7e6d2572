"""Hypothesis strategies for valid ``/v1`` event documents (the JSON form of the event model)."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from tracking_common.events import MAX_ENTITIES, utc_from_ms

__all__ = ["event_documents"]

_text = st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=30)
_json_value = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**53), 2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    _text,
)
_sdj = st.fixed_dictionaries(
    {
        "schema": st.sampled_from(
            ["iglu:com.acme/a/jsonschema/1-0-0", "iglu:io.x-y/b_c/jsonschema/10-2-3"]
        ),
        "data": st.dictionaries(_text, _json_value, max_size=4),
    }
)
_resolution = st.fixed_dictionaries(
    {"width": st.integers(0, 100_000), "height": st.integers(0, 100_000)}
)
_subject = st.fixed_dictionaries(
    {},
    optional={
        "user_id": _text,
        "domain_user_id": _text,
        "network_user_id": _text,
        "session_id": _text,
        "session_index": st.integers(0, 2**31 - 1),
        "ip_address": _text,
        "useragent": _text,
        "language": _text,
        "timezone": _text,
        "screen_resolution": _resolution,
        "viewport": _resolution,
        "color_depth": st.integers(0, 1024),
    },
)
_time = st.integers(0, 253_402_300_799_999).map(lambda ms: utc_from_ms(ms).isoformat())
_common: dict[str, st.SearchStrategy[Any]] = {
    "event_id": st.uuids().map(str),
    "platform": st.sampled_from(["web", "mob", "pc", "srv", "app", "tv", "cnsl", "iot"]),
}
_optional: dict[str, st.SearchStrategy[Any]] = {
    "app_id": _text,
    "tracker_version": _text,
    "namespace": _text,
    "created_at": _time,
    "true_timestamp": _time,
    # An empty subject renders as no fields at all and reads back as no subject.
    "subject": _subject.filter(bool),
    "entities": st.lists(_sdj, max_size=MAX_ENTITIES).filter(bool),
}
_page = st.fixed_dictionaries({"url": _text}, optional={"title": _text, "referrer": _text})
_offset = st.integers(-(2**31), 2**31 - 1)
event_documents = st.one_of(
    st.fixed_dictionaries(
        {**_common, "event_type": st.just("page_view"), "page": _page}, optional=_optional
    ),
    st.fixed_dictionaries(
        {**_common, "event_type": st.just("page_ping"), "page": _page},
        optional={
            **_optional,
            "min_x_offset": _offset,
            "max_x_offset": _offset,
            "min_y_offset": _offset,
            "max_y_offset": _offset,
        },
    ),
    st.fixed_dictionaries(
        {**_common, "event_type": st.just("struct"), "category": _text, "action": _text},
        optional={
            **_optional,
            "page": _page,
            "label": _text,
            "property": _text,
            "value": st.floats(allow_nan=False, allow_infinity=False),
        },
    ),
    st.fixed_dictionaries(
        {**_common, "event_type": st.just("self_describing"), "event": _sdj},
        optional={**_optional, "page": _page},
    ),
)
