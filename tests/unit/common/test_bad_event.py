"""The bad-event contract: every reason, the raw input, truncation, and its JSON Schema."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from tracking_common.errors import ValidationIssue
from tracking_common.iglu import SchemaKey, SchemaValidationError, bundled_repository
from tracking_common.record import BAD_EVENT_SCHEMA, encode_bad_event

BAD_KEY = SchemaKey.parse(BAD_EVENT_SCHEMA)
ISSUES = [
    ValidationIssue("/dtm", "invalid_timestamp", "dtm must be an integer"),
    ValidationIssue("/page", "missing", "Field required"),
]
RAW_LIMIT = 262_144


def _decoded(value: bytes) -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(value)
    bundled_repository().validate(BAD_KEY, document)
    assert document["schema"] == BAD_EVENT_SCHEMA
    return dict(document["data"])


def test_a_bad_event_carries_every_reason_and_the_raw_input() -> None:
    data = _decoded(
        encode_bad_event(
            b'{"e":"pv"}',
            ISSUES,
            source="tp2",
            index=3,
            request_id="req-1",
            received_tstamp=1_700_000_000_000,
        )
    )

    assert data == {
        "received_tstamp": 1_700_000_000_000,
        "source": "tp2",
        "index": 3,
        "errors": [issue.as_dict() for issue in ISSUES],
        "raw": '{"e":"pv"}',
        "raw_truncated": False,
        "request_id": "req-1",
    }


def test_a_whole_request_rejection_has_a_null_index_and_a_default_reason() -> None:
    data = _decoded(encode_bad_event("body", [], source="v1", index=None))

    assert data["index"] is None
    assert data["errors"] == [{"path": "", "code": "rejected", "message": "rejected"}]
    assert data["received_tstamp"] > 1_700_000_000_000
    assert "request_id" not in data


@pytest.mark.parametrize("size", [RAW_LIMIT - 1, RAW_LIMIT])
def test_raw_input_up_to_256_kib_is_kept_whole(size: int) -> None:
    data = _decoded(encode_bad_event(b"a" * size, ISSUES, source="v1", index=0))

    assert data["raw"] == "a" * size
    assert data["raw_truncated"] is False


def test_raw_input_over_256_kib_is_cut_and_marked() -> None:
    data = _decoded(encode_bad_event(b"a" * (RAW_LIMIT + 1), ISSUES, source="pixel", index=0))

    assert data["raw"] == "a" * RAW_LIMIT
    assert data["raw_truncated"] is True


def test_a_cut_through_a_multibyte_character_still_gives_valid_text() -> None:
    raw = "a" * (RAW_LIMIT - 1) + "€€"

    data = _decoded(encode_bad_event(raw, ISSUES, source="v1", index=0))

    assert data["raw_truncated"] is True
    assert data["raw"].startswith("a" * (RAW_LIMIT - 1))
    assert len(data["raw"].encode()) <= RAW_LIMIT + 3


def test_a_smaller_raw_limit_is_honoured() -> None:
    data = _decoded(encode_bad_event(b"0123456789", ISSUES, source="v1", index=0, raw_limit=4))

    assert (data["raw"], data["raw_truncated"]) == ("0123", True)


def test_invalid_utf8_and_lone_surrogates_are_replaced_not_fatal() -> None:
    from_bytes = _decoded(encode_bad_event(b"ok\xff\xfe", ISSUES, source="v1", index=0))
    from_text = _decoded(encode_bad_event("ok\ud800", ISSUES, source="v1", index=0))

    assert from_bytes["raw"] == "ok\ufffd\ufffd"
    assert from_text["raw"].startswith("ok")


def test_a_long_request_id_is_cut_to_the_schema_limit() -> None:
    data = _decoded(encode_bad_event(b"x", ISSUES, source="v1", index=0, request_id="r" * 500))

    assert data["request_id"] == "r" * 128


def test_the_schema_rejects_a_bad_event_without_reasons() -> None:
    document = orjson.loads(encode_bad_event(b"x", ISSUES, source="v1", index=0))
    document["data"]["errors"] = []

    with pytest.raises(SchemaValidationError):
        bundled_repository().validate(BAD_KEY, document)
