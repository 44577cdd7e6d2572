"""The msgspec Structs of the hot path and the pydantic event model agree.

What the Structs accept, the model accepts, with the same payload; a valid event takes the
fast path; and an event the Structs refuse is still accepted or rejected as the model says
(``decode_event`` asks it), on generated valid events and on mutations of them.
"""

from __future__ import annotations

import typing
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from tracking_common import events
from tracking_common.events import event_adapter
from tracking_common.ingest import structs
from tracking_common.ingest.decoding import decode_event, decode_events, v1_events
from tracking_common.ingest.structs import EVENT_DECODER
from tracking_common.protocol import render_payload, to_payload
from tracking_common.record import EVENT_RECORD_SCHEMA, encode_record, partition_key

from tests.support.fuzzing import examples
from tests.unit.common.event_strategies import event_documents

_FIELDS = [
    "event_id", "app_id", "platform", "tracker_version", "namespace", "created_at", "sent_at",
    "true_timestamp", "subject", "page", "entities", "event", "category", "action", "label",
    "property", "value", "min_x_offset", "max_y_offset", "event_type", "unknown_field",
]  # fmt: skip
_SUBJECT_FIELDS = ["user_id", "session_index", "screen_resolution", "color_depth", "extra"]
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([0, -1, 2**31, 100_001, 1.5, 1e300, "", "5", "web", "srv", "page_view"]),
    st.sampled_from(["2023-01-01", "2023-01-01T00:00:00Z", "2023-01-01T00:00:00+01:00"]),
    st.sampled_from(["6ba7b810-9dad-11d1-80b4-00c04fd430c8", "6BA7B8109DAD11D180B400C04FD430C8"]),
    st.sampled_from(["x" * 101, "x" * 256, "x" * 4097, "iglu:com.acme/a/jsonschema/1-0-0"]),
    st.sampled_from([[], {}, {"url": ""}, {"width": -1, "height": 2}, [{"schema": "x"}]]),
    st.text(max_size=5),
)


def _pydantic(document: Any) -> Any:
    try:
        return event_adapter().validate_python(document)
    except ValidationError:
        return None


def _msgspec(document: Any) -> Any:
    try:
        return EVENT_DECODER.decode(orjson.dumps(document))
    except msgspec.ValidationError:
        return None


def _rendered(event: Any, document: dict[str, Any]) -> dict[str, str]:
    """The payload, less the event id when each side generated its own."""
    payload = to_payload(event)
    if "event_id" not in document:
        del payload["eid"]
    return payload


@st.composite
def _mutated(draw: st.DrawFn) -> Any:
    """A valid event with one field set to a wrong (or right) value, or removed."""
    document = dict(draw(event_documents))
    target = document
    if draw(st.booleans()) and isinstance(document.get("subject"), dict):
        target = document["subject"] = dict(document["subject"])
        key = draw(st.sampled_from(_SUBJECT_FIELDS))
    else:
        key = draw(st.sampled_from(_FIELDS))
    if draw(st.integers(0, 4)) == 0:
        target.pop(key, None)
    else:
        target[key] = draw(_VALUES)
    return document


@settings(max_examples=examples(200), deadline=None)
@given(document=event_documents)
def test_a_valid_event_takes_the_fast_path_and_renders_the_same_payload(
    document: dict[str, Any],
) -> None:
    fast = _msgspec(document)

    assert fast is not None
    assert to_payload(fast) == to_payload(event_adapter().validate_python(document))


@settings(max_examples=examples(200), deadline=None)
@given(document=event_documents, sent=st.none() | st.integers(0, 2**53))
def test_the_record_of_the_rendered_struct_is_the_record_of_the_payload_dict(
    document: dict[str, Any], sent: int | None
) -> None:
    # The /v1 path encodes render_payload's Struct with msgspec; the reference is the dict
    # to_payload renders, encoded by orjson: the same bytes, key for key, in the same order.
    event = _msgspec(document)
    rendered = render_payload(event, event_id=str(event.event_id))
    payload = to_payload(event, event_id=str(event.event_id))
    data: dict[str, Any] = {
        "event_id": payload["eid"],
        "collector_tstamp": 1_700_000_000_000,
        "source": "v1",
        "payload": payload,
    }
    if sent is not None:
        data["device_sent_tstamp"] = sent
    expected = orjson.dumps({"schema": EVENT_RECORD_SCHEMA, "data": data})

    written = encode_record(
        rendered, collector_tstamp=1_700_000_000_000, source="v1", device_sent_tstamp=sent
    )
    assert written == expected
    assert encode_record(payload, collector_tstamp=1_700_000_000_000, source="v1",
                         device_sent_tstamp=sent) == expected  # fmt: skip
    assert partition_key(rendered) == partition_key(payload)


@settings(max_examples=examples(400), deadline=None)
@given(document=_mutated())
def test_on_mutated_events_the_structs_never_accept_what_the_model_refuses(
    document: dict[str, Any],
) -> None:
    fast, model = _msgspec(document), _pydantic(document)

    if fast is not None:
        assert model is not None, "the Structs accepted an event the model refuses"
        assert _rendered(fast, document) == _rendered(model, document)
    decoded = decode_event(orjson.dumps(document), level=1, max_depth=32)
    assert (decoded.event is not None) == (model is not None)
    if model is not None:
        assert decoded.event is not None
        assert _rendered(decoded.event, document) == _rendered(model, document)
    else:
        assert decoded.issues


@settings(max_examples=examples(200), deadline=None)
@given(documents=st.lists(event_documents | _mutated(), min_size=2, max_size=4))
def test_a_batch_decodes_as_its_events_one_by_one(documents: list[Any]) -> None:
    # The batch path decodes the whole body in one call (and falls back to one event at a
    # time when any is refused): each event comes out as it does alone, with its own bytes.
    together = decode_events(v1_events(orjson.dumps({"events": documents}), 32), max_depth=32)
    alone = [decode_event(orjson.dumps(d), level=3, max_depth=32) for d in documents]

    assert len(together) == len(alone)
    for document, batched, single in zip(documents, together, alone, strict=True):
        assert bytes(batched.raw) == bytes(single.raw)
        assert (batched.event is None) == (single.event is None)
        if batched.event is not None and single.event is not None:
            assert _rendered(batched.event, document) == _rendered(single.event, document)
        else:
            assert batched.issues == single.issues
            assert batched.event_id == single.event_id


_PAIRS = [
    (events.Resolution, structs.ResolutionStruct),
    (events.SelfDescribingJson, structs.SelfDescribingJsonStruct),
    (events.Subject, structs.SubjectStruct),
    (events.Page, structs.PageStruct),
    (events.PageView, structs.PageViewStruct),
    (events.PagePing, structs.PagePingStruct),
    (events.StructEvent, structs.StructEventStruct),
    (events.SelfDescribing, structs.SelfDescribingStruct),
]


def _model_limits(model: Any) -> dict[str, dict[str, Any]]:
    limits: dict[str, dict[str, Any]] = {}
    for name, info in model.model_fields.items():
        if name == "event_type":
            continue
        found: dict[str, Any] = {"required": info.is_required()}
        for item in [*info.metadata, *_annotation_metadata(info.annotation)]:
            for attribute in ("min_length", "max_length", "ge", "le", "pattern"):
                value = getattr(item, attribute, None)
                if value is not None:
                    found[attribute] = value
        limits[info.alias or name] = found
    return limits


def _annotation_metadata(annotation: Any) -> list[Any]:
    found: list[Any] = []
    for argument in typing.get_args(annotation) or [annotation]:
        found += getattr(argument, "__metadata__", [])
    return found


def _struct_limits(struct: Any) -> dict[str, dict[str, Any]]:
    info = msgspec.inspect.type_info(struct)
    assert isinstance(info, msgspec.inspect.StructType)
    limits: dict[str, dict[str, Any]] = {}
    for field in info.fields:
        found: dict[str, Any] = {"required": field.required}
        kinds = getattr(field.type, "types", (field.type,))
        for kind in kinds:
            for attribute, alias in (
                ("min_length", "min_length"),
                ("max_length", "max_length"),
                ("ge", "ge"),
                ("le", "le"),
                ("pattern", "pattern"),
            ):
                value = getattr(kind, attribute, None)
                if value is not None:
                    found[alias] = value
        limits[field.encode_name] = found
    return limits


@pytest.mark.parametrize(("model", "struct"), _PAIRS, ids=[m.__name__ for m, _ in _PAIRS])
def test_each_struct_declares_the_model_fields_and_limits(model: Any, struct: Any) -> None:
    assert _struct_limits(struct) == _model_limits(model)
