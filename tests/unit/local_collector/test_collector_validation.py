"""Reading payload_data bodies and describing events."""

from __future__ import annotations

import base64

import orjson
import pytest
from local_collector.validation import (
    NOT_JSON,
    PAYLOAD_DATA_URI,
    BadEventError,
    InvalidBodyError,
    describe_event,
    event_ids,
    parse_json,
    validate_payload_data,
    validate_query,
)

EVENT = {"e": "pv", "p": "web", "tv": "t-1", "eid": "e-1"}


def test_valid_body_yields_its_events() -> None:
    document = parse_json(orjson.dumps({"schema": PAYLOAD_DATA_URI, "data": [EVENT]}))
    assert validate_payload_data(document) == [EVENT]
    assert event_ids(document) == ["e-1"]


@pytest.mark.parametrize(
    "document",
    [
        NOT_JSON,
        [EVENT],
        {"schema": PAYLOAD_DATA_URI},
        {"schema": PAYLOAD_DATA_URI, "data": [EVENT], "extra": 1},
        {"schema": PAYLOAD_DATA_URI, "data": [{"e": 1, "p": "web", "tv": "t"}]},
    ],
)
def test_invalid_bodies_raise_with_a_reason(document: object) -> None:
    with pytest.raises(InvalidBodyError) as caught:
        validate_payload_data(document)
    assert caught.value.reason


def test_query_is_one_event() -> None:
    assert validate_query(EVENT) == EVENT
    with pytest.raises(InvalidBodyError):
        validate_query({"e": "pv"})


def test_event_ids_tolerate_any_document() -> None:
    assert event_ids(NOT_JSON) == []
    assert event_ids({"data": [1, {"eid": "x"}, {}]}) == ["x"]


def test_describe_reads_encoded_event_and_plain_contexts() -> None:
    wrapper = {
        "schema": "iglu:u/unstruct_event/jsonschema/1-0-0",
        "data": {"schema": "s", "data": {}},
    }
    contexts = {"schema": "c", "data": [{"schema": "e1", "data": {}}, {"schema": "e2", "data": {}}]}
    payload = EVENT | {
        "e": "ue",
        "ue_px": base64.urlsafe_b64encode(orjson.dumps(wrapper)).decode().rstrip("="),
        "co": orjson.dumps(contexts).decode(),
        "stm": "1",
    }

    described = describe_event(payload, received_at="now", path="/p")

    assert (described["schema"], described["contexts"]) == ("s", ["e1", "e2"])
    assert (described["stm"], described["received_at"], described["path"]) == ("1", "now", "/p")


@pytest.mark.parametrize(
    "extra",
    [
        {"e": "ue"},
        {"e": "ue", "ue_pr": "{not json"},
        {"e": "ue", "ue_pr": '{"schema": "x", "data": 3}'},
        {"cx": "***"},
        {"co": '{"schema": "c", "data": {}}'},
        {"co": '{"schema": "c", "data": [{"data": {}}]}'},
    ],
)
def test_unreadable_events_raise(extra: dict[str, str]) -> None:
    with pytest.raises(BadEventError):
        describe_event(EVENT | extra, received_at="now", path="/p")
