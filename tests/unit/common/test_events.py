"""The /v1 event model: each event type, its limits and its defaults."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError
from tracking_common.events import (
    MAX_ENTITIES,
    EventType,
    PagePing,
    PageView,
    Platform,
    SelfDescribing,
    StructEvent,
    event_adapter,
    ms_from_datetime,
    utc_from_ms,
)

AnyEvent = PageView | PagePing | StructEvent | SelfDescribing

PAGE = {"url": "https://example.com/pricing", "title": "Pricing"}
ENTITY = {"schema": "iglu:com.acme/user/jsonschema/1-0-0", "data": {"tier": "gold"}}


def _parse(document: dict[str, Any]) -> Any:
    return event_adapter().validate_python(document)


def _error_locations(exc: ValidationError) -> list[tuple[str, ...]]:
    return [tuple(str(part) for part in error["loc"]) for error in exc.errors()]


@pytest.mark.parametrize(
    ("document", "expected_type"),
    [
        ({"event_type": "page_view", "page": PAGE}, PageView),
        (
            {"event_type": "page_ping", "page": PAGE, "min_x_offset": 0, "max_y_offset": 900},
            PagePing,
        ),
        (
            {"event_type": "struct", "category": "shop", "action": "add", "value": 2.5},
            StructEvent,
        ),
        (
            {
                "event_type": "self_describing",
                "event": {"schema": "iglu:com.acme/click/jsonschema/1-0-0", "data": {"id": 1}},
            },
            SelfDescribing,
        ),
    ],
)
def test_each_event_type_parses_to_its_own_class(
    document: dict[str, Any],
    expected_type: type[PageView | PagePing | StructEvent | SelfDescribing],
) -> None:
    event = _parse(document)

    assert type(event) is expected_type
    assert event.event_type == EventType(document["event_type"])
    assert event.platform is Platform.WEB
    assert event.tracker_version == "tp-api-1"
    assert event.entities == []


def test_event_id_is_generated_when_absent_and_unique() -> None:
    first = _parse({"event_type": "page_view", "page": PAGE})
    second = _parse({"event_type": "page_view", "page": PAGE})

    assert isinstance(first.event_id, uuid.UUID)
    assert first.event_id != second.event_id


def test_a_given_event_id_is_kept() -> None:
    event_id = uuid.uuid4()

    event = _parse({"event_type": "page_view", "page": PAGE, "event_id": str(event_id)})

    assert event.event_id == event_id


def test_an_event_id_that_is_not_a_uuid_is_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        _parse({"event_type": "page_view", "page": PAGE, "event_id": "not-a-uuid"})

    assert ("page_view", "event_id") in _error_locations(caught.value)


def test_timestamps_parse_from_iso_strings_and_keep_their_offset() -> None:
    event = _parse(
        {
            "event_type": "page_view",
            "page": PAGE,
            "created_at": "2024-05-01T12:00:00.250Z",
            "sent_at": "2024-05-01T14:00:01+02:00",
            "true_timestamp": 1714564800,
        }
    )

    assert event.created_at == datetime(2024, 5, 1, 12, 0, 0, 250_000, tzinfo=UTC)
    assert event.sent_at == datetime(2024, 5, 1, 12, 0, 1, tzinfo=UTC)
    assert event.sent_at.utcoffset() == timedelta(hours=2)
    assert event.true_timestamp == datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_an_unparseable_timestamp_is_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        _parse({"event_type": "page_view", "page": PAGE, "created_at": "yesterday"})

    assert ("page_view", "created_at") in _error_locations(caught.value)


def test_epoch_millisecond_helpers_agree() -> None:
    moment = datetime(2024, 5, 1, 12, 0, 0, 123_000, tzinfo=UTC)

    assert ms_from_datetime(moment) == 1_714_564_800_123
    assert utc_from_ms(1_714_564_800_123) == moment
    # A naive datetime is read as UTC, an aware one by its own offset.
    assert ms_from_datetime(moment.replace(tzinfo=None)) == 1_714_564_800_123
    plus_two = moment.astimezone(timezone(timedelta(hours=2)))
    assert ms_from_datetime(plus_two) == 1_714_564_800_123


@pytest.mark.parametrize(
    ("document", "location"),
    [
        ({"event_type": "page_view"}, ("page_view", "page")),
        ({"event_type": "page_ping"}, ("page_ping", "page")),
        ({"event_type": "struct", "action": "add"}, ("struct", "category")),
        ({"event_type": "struct", "category": "shop"}, ("struct", "action")),
        ({"event_type": "self_describing"}, ("self_describing", "event")),
    ],
)
def test_required_fields_are_required(document: dict[str, Any], location: tuple[str, ...]) -> None:
    with pytest.raises(ValidationError) as caught:
        _parse(document)

    assert location in _error_locations(caught.value)


@pytest.mark.parametrize(
    ("document", "location"),
    [
        ({"event_type": "page_view", "page": {"url": 42}}, ("page_view", "page", "url")),
        ({"event_type": "page_view", "page": PAGE, "app_id": ["x"]}, ("page_view", "app_id")),
        ({"event_type": "page_view", "page": PAGE, "platform": "moon"}, ("page_view", "platform")),
        (
            {"event_type": "page_ping", "page": PAGE, "min_x_offset": "left"},
            ("page_ping", "min_x_offset"),
        ),
        (
            {"event_type": "page_ping", "page": PAGE, "max_y_offset": 2**31},
            ("page_ping", "max_y_offset"),
        ),
        (
            {"event_type": "struct", "category": "c", "action": "a", "value": "much"},
            ("struct", "value"),
        ),
        (
            {"event_type": "struct", "category": "c", "action": "a", "value": float("inf")},
            ("struct", "value"),
        ),
        (
            {"event_type": "self_describing", "event": {"schema": "acme/click", "data": {}}},
            ("self_describing", "event", "schema"),
        ),
        (
            {"event_type": "self_describing", "event": {"schema": ENTITY["schema"], "data": []}},
            ("self_describing", "event", "data"),
        ),
        (
            {"event_type": "page_view", "page": PAGE, "subject": {"session_index": -1}},
            ("page_view", "subject", "session_index"),
        ),
        (
            {
                "event_type": "page_view",
                "page": PAGE,
                "subject": {"screen_resolution": {"width": 100_001, "height": 1}},
            },
            ("page_view", "subject", "screen_resolution", "width"),
        ),
        (
            {"event_type": "page_view", "page": PAGE, "surprise": True},
            ("page_view", "surprise"),
        ),
    ],
)
def test_wrong_types_and_unknown_fields_are_rejected_at_their_path(
    document: dict[str, Any], location: tuple[str, ...]
) -> None:
    with pytest.raises(ValidationError) as caught:
        _parse(document)

    assert location in _error_locations(caught.value)


def test_an_unknown_event_type_is_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        _parse({"event_type": "transaction", "page": PAGE})

    assert caught.value.errors()[0]["type"] == "union_tag_invalid"


@pytest.mark.parametrize(
    ("field", "limit"),
    [
        (("app_id",), 255),
        (("tracker_version",), 100),
        (("namespace",), 128),
        (("page", "url"), 4096),
        (("page", "title"), 2000),
        (("page", "referrer"), 4096),
        (("subject", "user_id"), 255),
        (("subject", "domain_user_id"), 128),
        (("subject", "session_id"), 128),
        (("subject", "useragent"), 1000),
    ],
)
def test_string_limits_accept_the_limit_and_reject_one_more(
    field: tuple[str, ...], limit: int
) -> None:
    def document(length: int) -> dict[str, Any]:
        doc: dict[str, Any] = {"event_type": "page_view", "page": dict(PAGE)}
        target = doc
        for part in field[:-1]:
            target = target.setdefault(part, {})
        target[field[-1]] = "x" * length
        return doc

    _parse(document(limit))
    with pytest.raises(ValidationError) as caught:
        _parse(document(limit + 1))

    assert caught.value.errors()[0]["type"] == "string_too_long"
    assert tuple(str(p) for p in caught.value.errors()[0]["loc"]) == ("page_view", *field)


def test_empty_strings_are_rejected() -> None:
    with pytest.raises(ValidationError) as caught:
        _parse({"event_type": "struct", "category": "", "action": "a"})

    assert caught.value.errors()[0]["type"] == "string_too_short"


def test_struct_text_limits() -> None:
    _parse({"event_type": "struct", "category": "c" * 1000, "action": "a" * 1000})
    with pytest.raises(ValidationError):
        _parse({"event_type": "struct", "category": "c" * 1001, "action": "a"})
    with pytest.raises(ValidationError):
        _parse({"event_type": "struct", "category": "c", "action": "a", "label": "l" * 4097})


def test_up_to_max_entities_are_accepted_and_one_more_is_not() -> None:
    base = {"event_type": "page_view", "page": PAGE}

    event = _parse({**base, "entities": [ENTITY] * MAX_ENTITIES})
    assert len(event.entities) == MAX_ENTITIES
    assert event.entities[0].as_json() == ENTITY

    with pytest.raises(ValidationError) as caught:
        _parse({**base, "entities": [ENTITY] * (MAX_ENTITIES + 1)})
    assert caught.value.errors()[0]["type"] == "too_long"
    assert tuple(caught.value.errors()[0]["loc"]) == ("page_view", "entities")


def test_an_entity_without_an_iglu_uri_is_rejected_at_its_index() -> None:
    bad = {"schema": "iglu:com.acme/user/jsonschema/1-0", "data": {}}

    with pytest.raises(ValidationError) as caught:
        _parse({"event_type": "page_view", "page": PAGE, "entities": [ENTITY, bad]})

    assert ("page_view", "entities", "1", "schema") in _error_locations(caught.value)


def test_events_are_immutable() -> None:
    event = _parse({"event_type": "page_view", "page": PAGE})

    with pytest.raises(ValidationError):
        event.app_id = "changed"


def test_the_model_accepts_its_own_json_dump() -> None:
    event = _parse(
        {
            "event_type": "struct",
            "category": "c",
            "action": "a",
            "subject": {"user_id": "u1", "viewport": {"width": 800, "height": 600}},
            "entities": [ENTITY],
            "created_at": "2024-05-01T12:00:00Z",
        }
    )

    again = event_adapter().validate_json(event_adapter().dump_json(event, by_alias=True))

    assert again == event
