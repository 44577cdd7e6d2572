"""The Kafka event-record contract: encoding, the hand-written decoder and its JSON Schema."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tracking_common.errors import RecordContractError
from tracking_common.events import event_adapter
from tracking_common.iglu import (
    BUNDLED_SCHEMA_DIR,
    SchemaKey,
    SchemaValidationError,
    bundled_repository,
)
from tracking_common.protocol import to_payload
from tracking_common.record import (
    BAD_EVENT_SCHEMA,
    EVENT_RECORD_SCHEMA,
    MAX_PAYLOAD_VALUE_CHARS,
    PAYLOAD_KEYS,
    EventRecord,
    check_record,
    check_records,
    decode_record,
    encode_record,
    partition_key,
    record_headers,
)

from tests.support.fuzzing import examples

RECORD_KEY = SchemaKey.parse(EVENT_RECORD_SCHEMA)
SCHEMA_FILE = BUNDLED_SCHEMA_DIR / RECORD_KEY.relative_path
EID = "0b6b4ac8-2f0e-4a57-9b54-5cf9a1a1c0de"
SOURCES = ("v1", "tp2", "pixel", "internal")


def _payload(**extra: str) -> dict[str, str]:
    return {"e": "pv", "p": "web", "tv": "py-1", "eid": EID, "url": "https://e.io", **extra}


def _document(**data: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "event_id": EID,
        "collector_tstamp": 1_700_000_000_000,
        "source": "v1",
        "payload": _payload(),
    }
    base.update(data)
    return {"schema": EVENT_RECORD_SCHEMA, "data": base}


def _schema_accepts(document: Any) -> bool:
    try:
        bundled_repository().validate(RECORD_KEY, document)
    except SchemaValidationError:
        return False
    return True


def _decode_accepts(value: bytes) -> bool:
    try:
        decode_record(value)
    except RecordContractError:
        return False
    return True


def _slice_accepts(values: list[bytes]) -> bool:
    try:
        check_records(values)
    except RecordContractError:
        return False
    return True


def _rejection(value: bytes | None) -> tuple[str, str]:
    with pytest.raises(RecordContractError) as caught:
        decode_record(value)
    (issue,) = caught.value.issues
    return issue.path, issue.code


def test_the_schema_file_is_the_bundled_contract() -> None:
    document = orjson.loads(SCHEMA_FILE.read_bytes())

    assert Path(SCHEMA_FILE).is_file()
    assert document["self"] == {
        "vendor": "io.trackingpipeline",
        "name": "event_record",
        "format": "jsonschema",
        "version": "1-0-0",
    }
    # The decoder's key list and the schema's must be the same set.
    payload_schema = document["properties"]["data"]["properties"]["payload"]
    assert set(payload_schema["properties"]) == PAYLOAD_KEYS
    assert "stm" not in PAYLOAD_KEYS
    assert all(
        spec == {"type": "string", "maxLength": MAX_PAYLOAD_VALUE_CHARS}
        for spec in payload_schema["properties"].values()
    )


@pytest.mark.parametrize("source", SOURCES)
def test_encode_then_decode_round_trips(source: Any) -> None:
    payload = _payload(uid="u-1", co='{"schema":"x","data":[]}')

    value = encode_record(
        payload, collector_tstamp=1_700_000_000_123, source=source, device_sent_tstamp=17
    )

    assert decode_record(value) == EventRecord(
        event_id=EID,
        collector_tstamp=1_700_000_000_123,
        source=source,
        payload=payload,
        device_sent_tstamp=17,
    )
    assert _schema_accepts(orjson.loads(value))


def test_encode_record_stamps_now_and_leaves_out_an_absent_device_time() -> None:
    record = decode_record(encode_record(_payload(), source="internal"))

    assert record.collector_tstamp > 1_700_000_000_000
    assert record.device_sent_tstamp is None
    assert "device_sent_tstamp" not in orjson.loads(encode_record(_payload(), source="v1"))["data"]


@pytest.mark.parametrize("name", ["page_view", "page_ping", "struct", "self_describing"])
@pytest.mark.parametrize("base64_encode", [False, True])
def test_records_built_from_the_typed_model_follow_the_contract(
    name: str, base64_encode: bool
) -> None:
    fields_by_type: dict[str, dict[str, Any]] = {
        "page_view": {"page": {"url": "https://e.io"}},
        "page_ping": {"page": {"url": "https://e.io"}, "max_y_offset": 300},
        "struct": {"category": "c", "action": "a", "value": 1.5},
        "self_describing": {"event": {"schema": "iglu:com.acme/x/jsonschema/1-0-0", "data": {}}},
    }
    fields = fields_by_type[name]
    event = event_adapter().validate_python(
        {
            "event_type": name,
            "subject": {"user_id": "u"},
            "entities": [{"schema": "iglu:com.acme/e/jsonschema/1-0-0", "data": {"a": 1}}],
            **fields,
        }
    )

    value = encode_record(to_payload(event, base64_encode=base64_encode), source="internal")

    assert decode_record(value).event_id == str(event.event_id)
    assert _schema_accepts(orjson.loads(value))


_VIOLATIONS: list[tuple[bytes | None, tuple[str, str]]] = [
    (None, ("", "null_value")),
    (b"{not json", ("", "invalid_json")),
    (b"", ("", "invalid_json")),
    (b"[1, 2]", ("", "invalid_envelope")),
    (b'"text"', ("", "invalid_envelope")),
    (b'{"schema": "x"}', ("", "invalid_envelope")),
    (
        orjson.dumps({**_document(), "extra": 1}),
        ("", "invalid_envelope"),
    ),
    (
        orjson.dumps({**_document(), "schema": EVENT_RECORD_SCHEMA[:-5] + "2-0-0"}),
        ("/schema", "unknown_schema"),
    ),
    (
        orjson.dumps({**_document(), "schema": "iglu:io.trackingpipeline/bad_event/1-0-0"}),
        ("/schema", "unknown_schema"),
    ),
    (orjson.dumps({"schema": EVENT_RECORD_SCHEMA, "data": []}), ("/data", "invalid_type")),
    (orjson.dumps(_document(extra=1)), ("/data", "unknown_field")),
    (orjson.dumps(_document(event_id=None)), ("/data/event_id", "invalid_event_id")),
    (orjson.dumps(_document(event_id="42")), ("/data/event_id", "invalid_event_id")),
    (orjson.dumps(_document(event_id=EID + "\n")), ("/data/event_id", "invalid_event_id")),
    (orjson.dumps(_document(source="ftp")), ("/data/source", "invalid_source")),
    (orjson.dumps(_document(source=None)), ("/data/source", "invalid_source")),
    (orjson.dumps(_document(source=[])), ("/data/source", "invalid_source")),
    (orjson.dumps(_document(source={"v1": 1})), ("/data/source", "invalid_source")),
    (orjson.dumps(_document(event_id=[EID])), ("/data/event_id", "invalid_event_id")),
    (orjson.dumps(_document(collector_tstamp=[1])), ("/data/collector_tstamp", "invalid_type")),
    (
        orjson.dumps(_document(device_sent_tstamp={"ms": 1})),
        ("/data/device_sent_tstamp", "invalid_type"),
    ),
    (orjson.dumps(_document(payload=[["e", "pv"]])), ("/data/payload", "invalid_type")),
    (
        orjson.dumps(_document(payload={**_payload(), "url": ["https://a"]})),
        ("/data/payload/url", "invalid_type"),
    ),
    (
        orjson.dumps(_document(collector_tstamp="1")),
        ("/data/collector_tstamp", "invalid_type"),
    ),
    (orjson.dumps(_document(collector_tstamp=-1)), ("/data/collector_tstamp", "invalid_type")),
    (orjson.dumps(_document(collector_tstamp=1.5)), ("/data/collector_tstamp", "invalid_type")),
    (
        orjson.dumps(_document(collector_tstamp=True)),
        ("/data/collector_tstamp", "invalid_type"),
    ),
    (
        orjson.dumps({"schema": EVENT_RECORD_SCHEMA, "data": {"event_id": EID, "source": "v1"}}),
        ("/data/collector_tstamp", "invalid_type"),
    ),
    (
        orjson.dumps(_document(device_sent_tstamp=None)),
        ("/data/device_sent_tstamp", "invalid_type"),
    ),
    (orjson.dumps(_document(payload="e=pv")), ("/data/payload", "invalid_type")),
    (
        orjson.dumps(_document(payload=_payload(stm="1"))),
        ("/data/payload", "unknown_field"),
    ),
    (
        orjson.dumps(_document(payload=_payload(color="red"))),
        ("/data/payload", "unknown_field"),
    ),
    (
        orjson.dumps(_document(payload={**_payload(), "vid": 3})),
        ("/data/payload/vid", "invalid_type"),
    ),
    (
        orjson.dumps(_document(payload={**_payload(), "aid": None})),
        ("/data/payload/aid", "invalid_type"),
    ),
    (
        orjson.dumps(_document(payload=_payload(ua="x" * (MAX_PAYLOAD_VALUE_CHARS + 1)))),
        ("/data/payload/ua", "too_long"),
    ),
    (
        orjson.dumps(_document(payload={k: v for k, v in _payload().items() if k != "eid"})),
        ("/data/payload/eid", "missing_field"),
    ),
    (
        orjson.dumps(_document(payload={k: v for k, v in _payload().items() if k != "tv"})),
        ("/data/payload/tv", "missing_field"),
    ),
    (
        orjson.dumps(_document(payload=_payload(eid=str(uuid.UUID(int=1))))),
        ("/data/payload/eid", "event_id_mismatch"),
    ),
]


@pytest.mark.parametrize(("value", "expected"), _VIOLATIONS)
def test_decode_record_rejects_each_contract_violation(
    value: bytes | None, expected: tuple[str, str]
) -> None:
    assert _rejection(value) == expected


@pytest.mark.parametrize(("value", "expected"), _VIOLATIONS)
def test_a_slice_holding_a_violation_is_rejected_for_it(
    value: bytes | None, expected: tuple[str, str]
) -> None:
    valid = orjson.dumps(_document())
    with pytest.raises(RecordContractError) as caught:
        check_records([valid, value, valid])
    (issue,) = caught.value.issues
    assert (issue.path, issue.code) == expected


def test_a_conforming_slice_is_checked_as_each_record_is() -> None:
    values = [
        orjson.dumps(_document(event_id=eid, payload=_payload(eid=eid)))
        for eid in (EID, str(uuid.UUID(int=7)), EID.upper())
    ]

    assert check_records(values) == [check_record(value) for value in values]
    assert check_records([]) == []


def test_event_ids_swapped_between_two_records_of_a_slice_are_rejected() -> None:
    # Every payload eid is one of the slice's event ids, but not its own record's.
    other = str(uuid.UUID(int=7))
    values = [
        orjson.dumps(_document(event_id=EID, payload=_payload(eid=other))),
        orjson.dumps(_document(event_id=other, payload=_payload(eid=EID))),
    ]

    with pytest.raises(RecordContractError) as caught:
        check_records(values)
    assert caught.value.codes == ("event_id_mismatch",)


def test_a_slice_mixing_common_and_other_payload_fields_is_checked_as_each_record_is() -> None:
    # Payloads of the fields trackers send are checked against those alone; any other field
    # (here an ecommerce and a browser-feature one) sends the slice to the check of all.
    values = [
        orjson.dumps(_document(payload=_payload(cookie="1", cs="UTF-8", ds="1x1"))),
        orjson.dumps(_document(payload=_payload(tr_id="order-1"))),
        orjson.dumps(_document(payload=_payload(f_pdf="1"))),
    ]

    assert check_records(values) == [check_record(value) for value in values]
    assert all(_schema_accepts(orjson.loads(value)) for value in values)


@pytest.mark.parametrize(
    ("field", "value"),
    [("tr_id", 1), ("ti_qu", None), ("f_pdf", "x" * (MAX_PAYLOAD_VALUE_CHARS + 1))],
)
def test_a_wrong_value_in_a_field_trackers_rarely_send_is_rejected_in_a_slice(
    field: str, value: Any
) -> None:
    payload: dict[str, Any] = {**_payload(), field: value}
    bad = orjson.dumps(_document(payload=payload))
    valid = orjson.dumps(_document())

    with pytest.raises(RecordContractError) as caught:
        check_records([valid, bad, valid])
    assert caught.value.codes == _rejection(bad)[1:]
    assert not _schema_accepts(orjson.loads(bad))


_UUID_CHARS = "0123456789abcdefABCDEF-g \u0663\n"


@st.composite
def _event_id_like(draw: st.DrawFn) -> str:
    """A UUID's 36 characters, often with one character replaced, removed or added."""
    chars = list(str(draw(st.uuids())))
    if draw(st.booleans()):
        chars = [char.upper() for char in chars]
    edit = draw(st.sampled_from(["none", "replace", "remove", "add"]))
    at = draw(st.integers(0, 35))
    if edit == "replace":
        chars[at] = draw(st.sampled_from(_UUID_CHARS))
    elif edit == "remove":
        del chars[at]
    elif edit == "add":
        chars.insert(at, draw(st.sampled_from(_UUID_CHARS)))
    return "".join(chars)


@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_event_id_like(), max_size=4))
def test_a_slices_event_ids_are_uuids_exactly_when_the_json_schema_says_so(
    event_ids: list[str],
) -> None:
    # A slice's ids are checked joined, not one by one: ids of 35 and 37 characters, or a
    # space where a digit goes, must not slip through where the schema's pattern refuses.
    documents = [_document(event_id=eid, payload=_payload(eid=eid)) for eid in event_ids]

    accepted = _slice_accepts([orjson.dumps(document) for document in documents])

    assert accepted == all(_schema_accepts(document) for document in documents)


def test_ids_one_short_and_one_long_are_refused_together() -> None:
    short, long = EID[:-1], EID + "0"
    documents = [_document(event_id=eid, payload=_payload(eid=eid)) for eid in (short, long)]

    assert not _slice_accepts([orjson.dumps(document) for document in documents])


def test_a_payload_value_of_exactly_the_limit_is_accepted() -> None:
    value = orjson.dumps(_document(payload=_payload(ua="x" * MAX_PAYLOAD_VALUE_CHARS)))

    assert decode_record(value).payload["ua"] == "x" * MAX_PAYLOAD_VALUE_CHARS
    assert _schema_accepts(orjson.loads(value))


def test_an_uppercase_event_id_is_a_uuid_too() -> None:
    upper = EID.upper()
    value = orjson.dumps(_document(event_id=upper, payload=_payload(eid=upper)))

    assert decode_record(value).event_id == upper
    assert _schema_accepts(orjson.loads(value))


_TEXT = st.text(max_size=30)
_OPTIONAL_KEYS = sorted(PAYLOAD_KEYS - {"e", "p", "tv", "eid"})


@st.composite
def _valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    event_id = str(draw(st.uuids()))
    if draw(st.booleans()):
        event_id = event_id.upper()
    payload = draw(st.dictionaries(st.sampled_from(_OPTIONAL_KEYS), _TEXT, max_size=8))
    payload.update(e=draw(_TEXT), p=draw(_TEXT), tv=draw(_TEXT), eid=event_id)
    data: dict[str, Any] = {
        "event_id": event_id,
        "collector_tstamp": draw(st.integers(0, 2**63 - 1)),
        "source": draw(st.sampled_from(SOURCES)),
        "payload": payload,
    }
    if draw(st.booleans()):
        data["device_sent_tstamp"] = draw(st.integers(0, 2**63 - 1))
    return {"schema": EVENT_RECORD_SCHEMA, "data": data}


_JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | _TEXT
    | st.floats(allow_nan=False, allow_infinity=False)
)
# Scalars and small containers: a wrongly typed field may hold a list or an object too.
_JSON_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=5,
)


def _mutate(document: dict[str, Any], target: str, replacement: Any) -> dict[str, Any]:
    data = dict(document["data"])
    payload = dict(data["payload"])
    if target == "schema":
        return {"schema": replacement, "data": data}
    if target == "drop_data_key":
        data.pop(sorted(data)[replacement % len(data)])
    elif target == "payload_value":
        payload[sorted(payload)[len(str(replacement)) % len(payload)]] = replacement
    elif target == "payload_unknown_key":
        payload[f"x_{replacement}"] = "v"
    elif target == "drop_required_payload_key":
        payload.pop(("e", "p", "tv", "eid")[replacement % 4])
    else:
        data[target] = replacement
    if "payload" in data:
        data["payload"] = payload
    return {"schema": document["schema"], "data": data}


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_valid_documents())
def test_generated_valid_records_pass_the_decoder_and_the_json_schema(
    document: dict[str, Any],
) -> None:
    value = orjson.dumps(document)

    record = decode_record(value)

    assert _schema_accepts(document)
    assert check_records([value, value]) == [check_record(value)] * 2
    assert record.payload == document["data"]["payload"]
    assert (
        orjson.loads(
            encode_record(
                record.payload,
                collector_tstamp=record.collector_tstamp,
                source=record.source,  # type: ignore[arg-type]
                device_sent_tstamp=record.device_sent_tstamp,
            )
        )
        == document
    )


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    _valid_documents(),
    st.one_of(
        st.tuples(st.just("schema"), _JSON_VALUES),
        st.tuples(st.just("drop_data_key"), st.integers(0, 10)),
        st.tuples(
            st.just("payload_value"),
            st.none() | st.integers(-(2**63), 2**63 - 1) | st.booleans() | st.lists(_TEXT),
        ),
        st.tuples(st.just("payload_unknown_key"), st.text(min_size=1, max_size=5)),
        st.tuples(st.just("drop_required_payload_key"), st.integers(0, 3)),
        st.tuples(
            st.sampled_from(
                ["event_id", "collector_tstamp", "source", "device_sent_tstamp", "payload"]
            ),
            _JSON_VALUES,
        ),
        st.tuples(st.sampled_from(["extra", "stm"]), _JSON_VALUES),
    ),
)
def test_the_decoder_and_the_json_schema_agree_on_mutated_records(
    document: dict[str, Any], mutation: tuple[str, Any]
) -> None:
    mutated = _mutate(document, *mutation)
    data = mutated["data"]
    # The schema cannot say "payload.eid equals event_id"; keep them equal so only the
    # mutation decides.
    payload = data.get("payload", {})
    if "eid" in payload and type(data.get("event_id")) is str:
        payload["eid"] = data["event_id"]

    value = orjson.dumps(mutated)
    assert _decode_accepts(value) == _schema_accepts(mutated)
    valid = orjson.dumps(document)
    assert _slice_accepts([valid, value, valid]) == _schema_accepts(mutated)


def test_partition_key_prefers_user_then_cookie_then_session_then_event_id() -> None:
    assert partition_key(_payload(aid="shop", uid="u", duid="d", sid="s")) == b"shop:u"
    assert partition_key(_payload(aid="shop", duid="d", sid="s")) == b"shop:d"
    assert partition_key(_payload(aid="shop", sid="s")) == b"shop:s"
    assert partition_key(_payload(uid="u")) == b":u"
    assert partition_key(_payload(aid="shop", uid="", duid="d")) == b"shop:d"
    assert partition_key(_payload(aid="shop")) == EID.encode()


def test_one_users_events_share_a_key_across_event_types() -> None:
    view = _payload(aid="shop", uid="u-9", eid=str(uuid.uuid4()))
    struct = {**view, "e": "se", "eid": str(uuid.uuid4())}

    assert partition_key(view) == partition_key(struct)


@given(
    st.fixed_dictionaries(
        {"eid": st.uuids().map(str)},
        optional={"aid": _TEXT, "uid": _TEXT, "duid": _TEXT, "sid": _TEXT},
    )
)
def test_partition_key_is_never_empty(payload: dict[str, str]) -> None:
    assert partition_key(payload)


def test_record_headers_name_the_schema_event_and_content_type() -> None:
    assert record_headers(EID) == (
        ("record-schema", EVENT_RECORD_SCHEMA.encode()),
        ("event-id", EID.encode()),
        ("content-type", b"application/json"),
    )


def test_bad_event_schema_is_bundled() -> None:
    assert bundled_repository().has(SchemaKey.parse(BAD_EVENT_SCHEMA))
