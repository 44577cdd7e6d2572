"""Property: any valid event renders to a valid payload_data item and reads back equal."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tracking_common.events import event_adapter
from tracking_common.iglu import PAYLOAD_DATA_SCHEMA, bundled_repository
from tracking_common.protocol import from_payload, to_payload
from tracking_common.record import decode_record, encode_record

from tests.support.fuzzing import examples
from tests.unit.common.event_strategies import event_documents


@settings(max_examples=examples(200), deadline=None)
@given(document=event_documents, base64_encode=st.booleans())
def test_any_valid_event_round_trips_through_a_valid_payload(
    document: dict[str, Any], base64_encode: bool
) -> None:
    event = event_adapter().validate_python(document)

    payload = to_payload(event, base64_encode=base64_encode)

    bundled_repository().validate(PAYLOAD_DATA_SCHEMA, [payload])
    assert from_payload(payload) == event


@settings(max_examples=examples(100), deadline=None)
@given(document=event_documents)
def test_any_valid_event_makes_a_record_the_decoder_accepts(document: dict[str, Any]) -> None:
    payload = to_payload(event_adapter().validate_python(document))

    record = decode_record(encode_record(payload, collector_tstamp=1, source="internal"))

    assert record.payload == payload
    assert record.event_id == document["event_id"]
