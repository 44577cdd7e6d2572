"""The examples in docs/kafka-contract.md and docs/event-model.md follow the code they document."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from tracking_common.events import event_adapter
from tracking_common.iglu import SchemaKey, bundled_repository
from tracking_common.protocol import from_payload, to_payload
from tracking_common.record import (
    BAD_EVENT_SCHEMA,
    EVENT_RECORD_SCHEMA,
    decode_record,
    partition_key,
)

DOCS = Path(__file__).resolve().parents[3] / "docs"
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _blocks(name: str, language: str) -> list[str]:
    text = (DOCS / name).read_text(encoding="utf-8")
    return [body for lang, body in _FENCE.findall(text) if lang == language]


def _json_blocks(name: str) -> list[Any]:
    return [orjson.loads(body) for body in _blocks(name, "json")]


def test_the_event_record_example_is_a_valid_record() -> None:
    (record,) = [
        doc for doc in _json_blocks("kafka-contract.md") if doc["schema"] == EVENT_RECORD_SCHEMA
    ]

    decoded = decode_record(orjson.dumps(record))

    bundled_repository().validate(SchemaKey.parse(EVENT_RECORD_SCHEMA), record)
    # The key the contract names for this example.
    assert partition_key(decoded.payload) == b"shop:u-42"
    from_payload(decoded.payload)


def test_the_bad_event_example_is_a_valid_bad_event() -> None:
    (bad,) = [doc for doc in _json_blocks("kafka-contract.md") if doc["schema"] == BAD_EVENT_SCHEMA]

    bundled_repository().validate(SchemaKey.parse(BAD_EVENT_SCHEMA), bad)


def test_the_python_producer_example_names_real_functions() -> None:
    snippets = _blocks("kafka-contract.md", "python")

    assert snippets
    for node in (node for snippet in snippets for node in ast.walk(ast.parse(snippet))):
        if isinstance(node, ast.ImportFrom) and node.module is not None:
            module = importlib.import_module(node.module)
            for alias in node.names:
                assert hasattr(module, alias.name), f"{node.module}.{alias.name}"


@pytest.mark.parametrize("document", _json_blocks("event-model.md"), ids=lambda d: d["event_type"])
def test_each_event_model_example_parses_and_survives_the_tracker_protocol(
    document: dict[str, Any],
) -> None:
    event = event_adapter().validate_python(document)

    assert from_payload(to_payload(event)) == event


def test_the_event_model_shows_every_event_type() -> None:
    shown = {doc["event_type"] for doc in _json_blocks("event-model.md")}

    assert shown == {"page_view", "page_ping", "struct", "self_describing"}
