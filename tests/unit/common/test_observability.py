"""JSON log lines: one object per record with the standard fields, extras and trace ids."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from tracking_common.observability import JsonLogFormatter


def record(
    message: str = "sent %s events",
    *args: object,
    level: int = logging.INFO,
    created: float = 1_714_564_800.25,
    exc_info: Any = None,
    **extra: object,
) -> logging.LogRecord:
    entry = logging.LogRecord("tracking.test", level, __file__, 10, message, args or (3,), exc_info)
    entry.created = created
    entry.msecs = (created - int(created)) * 1000
    entry.__dict__.update(extra)
    return entry


@pytest.fixture
def formatter() -> JsonLogFormatter:
    formatter = JsonLogFormatter(service="tracking-api")
    formatter.converter = time.gmtime
    return formatter


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    provider = TracerProvider()
    yield provider
    provider.shutdown()


def test_a_line_is_one_json_object_with_the_standard_fields(formatter: JsonLogFormatter) -> None:
    line = formatter.format(record())

    assert "\n" not in line
    assert orjson.loads(line) == {
        "ts": "2024-05-01T12:00:00.250Z",
        "level": "INFO",
        "service": "tracking-api",
        "logger": "tracking.test",
        "msg": "sent 3 events",
    }


def test_the_timestamp_is_utc(formatter: JsonLogFormatter) -> None:
    created = datetime(2024, 1, 2, 3, 4, 5, 500_000, tzinfo=UTC).timestamp()

    entry = orjson.loads(formatter.format(record(created=created)))

    assert entry["ts"] == "2024-01-02T03:04:05.500Z"


def test_extras_are_fields_and_unserialisable_ones_become_text(
    formatter: JsonLogFormatter,
) -> None:
    entry = orjson.loads(
        formatter.format(record(batch_id="b-1", events=3, topic=None, when=object, _private=1))
    )

    assert entry["batch_id"] == "b-1"
    assert entry["events"] == 3
    assert entry["topic"] is None
    assert entry["when"] == str(object)
    assert "_private" not in entry
    assert "args" not in entry
    assert "levelno" not in entry


def test_exceptions_are_rendered_in_exc(formatter: JsonLogFormatter) -> None:
    try:
        raise ValueError("broken")  # noqa: TRY301 - an exception with a traceback to log
    except ValueError:
        entry = orjson.loads(formatter.format(record(level=logging.ERROR, exc_info=sys.exc_info())))

    assert entry["level"] == "ERROR"
    assert entry["exc"].startswith("Traceback")
    assert "ValueError: broken" in entry["exc"]


def test_no_trace_ids_outside_a_span(formatter: JsonLogFormatter) -> None:
    entry = orjson.loads(formatter.format(record()))

    assert "trace_id" not in entry
    assert "span_id" not in entry


def test_the_current_span_ids_are_added(
    formatter: JsonLogFormatter, provider: TracerProvider
) -> None:
    with provider.get_tracer("test").start_as_current_span("work") as span:
        entry = orjson.loads(formatter.format(record()))

    context = span.get_span_context()
    assert entry["trace_id"] == format(context.trace_id, "032x")
    assert entry["span_id"] == format(context.span_id, "016x")
    assert len(entry["trace_id"]) == 32
    assert len(entry["span_id"]) == 16


def test_it_works_through_a_logger(
    formatter: JsonLogFormatter, caplog: pytest.LogCaptureFixture
) -> None:
    logger = logging.getLogger("tracking.test.logger")
    with caplog.at_level(logging.INFO, logger=logger.name):
        logger.info("published %s records to %s", 2, "events", extra={"request_id": "r-9"})

    entry = orjson.loads(formatter.format(caplog.records[-1]))

    assert entry["msg"] == "published 2 records to events"
    assert entry["request_id"] == "r-9"
    assert entry["logger"] == "tracking.test.logger"
