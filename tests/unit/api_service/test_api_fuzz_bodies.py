"""Property-based fuzz of what the OpenAPI document cannot describe: arbitrary JSON, near-valid
events and tracker payloads, gzip (valid, truncated, with trailing bytes) and odd headers.

Whatever arrives, the answer is a documented 2xx/4xx, never a 5xx, and a 2xx answer accounts
for exactly the events it reports.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

import httpx
from api_service.app import build_pipeline, create_app
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.fuzzing import examples
from tests.unit.api_service.api_support import AUTH, PAYLOAD_DATA, FakePublisher, make_settings

FUZZ = settings(
    max_examples=examples(100),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
EXPECTED = {200, 207, 400, 401, 413, 415}
TP2 = "/com.snowplowanalytics.snowplow/tp2"

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
v1_events = st.fixed_dictionaries(
    {"event_type": st.sampled_from(["page_view", "page_ping", "struct", "self_describing", "x"])},
    optional={
        "event_id": st.uuids().map(str) | st.text(max_size=40),
        "app_id": st.text(max_size=10),
        "page": st.fixed_dictionaries({}, optional={"url": st.text(max_size=30), "title": scalars}),
        "category": st.text(max_size=5),
        "action": st.text(max_size=5),
        "value": scalars,
        "subject": st.dictionaries(
            st.sampled_from(["user_id", "session_index", "ip_address", "screen"]), json_values
        ),
        "entities": json_values,
        "event": st.fixed_dictionaries({"schema": st.text(max_size=40), "data": json_values}),
        "created_at": scalars,
    },
)
tracker_items = st.dictionaries(
    st.sampled_from(["e", "p", "tv", "eid", "url", "dtm", "stm", "uid", "aid", "ue_px", "co", "x"]),
    st.sampled_from(["pv", "se", "ue", "web", "js-3", "1700000000000", "-1", ""])
    | st.text(max_size=12),
    max_size=8,
)
v1_documents = (
    v1_events | st.fixed_dictionaries({"events": st.lists(v1_events | json_values, max_size=5)})
) | json_values


def _encode(document: Any, how: str) -> bytes:
    raw = json.dumps(document).encode()  # stdlib: integers past 64 bits too
    if how == "gzip":
        return gzip.compress(raw)
    if how == "truncated":
        return gzip.compress(raw)[:-5]
    if how == "trailing":
        return gzip.compress(raw) + b"\0\0"
    return raw


encodings = st.sampled_from(["plain", "gzip", "truncated", "trailing"])
encoding_headers = st.sampled_from([None, "gzip", "identity", "br", "GZIP", ""])


_PUBLISHER = FakePublisher()
_SETTINGS = make_settings(api_max_event_bytes=2048, api_max_events_per_request=4)
_APP = create_app(_SETTINGS, build_pipeline(_SETTINGS, _PUBLISHER))


def _send(method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, FakePublisher]:
    """One request to the shared app (rate limit off, so examples are independent)."""
    _PUBLISHER.messages.clear()

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=_APP)
        async with httpx.AsyncClient(transport=transport, base_url="http://fuzz.test") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(send()), _PUBLISHER


def _check(answer: httpx.Response, publisher: FakePublisher) -> None:
    assert answer.status_code in EXPECTED, (answer.status_code, answer.text)
    if answer.status_code in {200, 207}:
        body = answer.json()
        events = publisher.on("events")
        assert body["accepted"] == len(events) == len(body["event_ids"]) > 0
        assert len(publisher.on("events_bad")) == body["rejected"]


@FUZZ
@given(document=v1_documents, how=encodings, encoding=encoding_headers)
def test_v1_never_fails_on_any_body(document: Any, how: str, encoding: str | None) -> None:
    headers = dict(AUTH)
    if encoding is not None:
        headers["content-encoding"] = encoding
    answer, publisher = _send("POST", "/v1/events", content=_encode(document, how), headers=headers)

    _check(answer, publisher)


@FUZZ
@given(
    items=st.lists(tracker_items | json_values, max_size=5),
    schema=st.sampled_from([PAYLOAD_DATA, PAYLOAD_DATA[:-1] + "0", "iglu:x/y/jsonschema/1-0-0"]),
    how=encodings,
)
def test_tp2_never_fails_on_any_body(items: list[Any], schema: str, how: str) -> None:
    headers = {"content-encoding": "gzip"} if how != "plain" else {}
    body = _encode({"schema": schema, "data": items}, how)

    answer, publisher = _send("POST", TP2, content=body, headers=headers)

    _check(answer, publisher)


@FUZZ
@given(query=tracker_items)
def test_the_pixel_never_fails_on_any_query(query: dict[str, str]) -> None:
    answer, publisher = _send("GET", "/i", params=query)

    if answer.status_code == 200:  # a GIF, not a JSON result
        assert answer.content.startswith(b"GIF89a")
        assert len(publisher.on("events")) == 1
    else:
        _check(answer, publisher)
