"""JSON log lines: one object per record, with the fields operators query on."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterator

import orjson
import pytest
from opentelemetry.sdk.trace import TracerProvider
from tracking_common.observability import (
    JsonLogFormatter,
    RepeatFilter,
    configure_logging,
    service_name,
)


def _record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("tracking.test", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    return record


def test_a_log_line_is_one_json_object_with_the_expected_fields() -> None:
    line = JsonLogFormatter(service="api").format(
        _record("sent %d events to %s", 3, "events", batch_id="b-1", attempts=2)
    )

    assert "\n" not in line
    entry = orjson.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["service"] == "api"
    assert entry["logger"] == "tracking.test"
    assert entry["msg"] == "sent 3 events to events"
    assert entry["batch_id"] == "b-1"
    assert entry["attempts"] == 2
    assert entry["ts"].endswith("Z")
    assert "trace_id" not in entry
    assert not {"args", "msg_args", "levelno", "pathname", "_private"} & set(entry)


def test_the_timestamp_is_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # +05:30: no whole-hour offset hides a mistake
    time.tzset()
    try:
        record = _record("x")
        record.created, record.msecs = 1_700_000_000.25, 250.0

        entry = orjson.loads(JsonLogFormatter(service="api").format(record))
    finally:
        monkeypatch.undo()
        time.tzset()

    assert entry["ts"] == "2023-11-14T22:13:20.250Z"


def test_uvicorns_coloured_copy_of_the_message_is_left_out() -> None:
    record = _record("Started server process [%d]", 7, color_message="Started [\x1b[36m%d\x1b[0m]")

    entry = orjson.loads(JsonLogFormatter(service="api").format(record))

    assert entry["msg"] == "Started server process [7]"
    assert "color_message" not in entry


def test_private_extras_are_left_out_and_odd_values_become_text() -> None:
    entry = orjson.loads(
        JsonLogFormatter(service="api").format(_record("m", _internal="k", where=object()))
    )

    assert "_internal" not in entry
    assert entry["where"].startswith("<object object")


def _fail() -> None:
    raise RuntimeError("broker gone")


def test_exceptions_are_rendered_into_the_same_object() -> None:
    try:
        _fail()
    except RuntimeError:
        record = _record("send failed")
        record.exc_info = sys.exc_info()

    entry = orjson.loads(JsonLogFormatter(service="forwarder").format(record))

    assert "RuntimeError: broker gone" in entry["exc"]
    assert entry["msg"] == "send failed"


def test_the_current_span_ids_are_included() -> None:
    provider = TracerProvider()
    try:
        with provider.get_tracer("t").start_as_current_span("work") as span:
            entry = orjson.loads(JsonLogFormatter(service="api").format(_record("inside")))
    finally:
        provider.shutdown()

    span_context = span.get_span_context()
    assert entry["trace_id"] == format(span_context.trace_id, "032x")
    assert entry["span_id"] == format(span_context.span_id, "016x")


@pytest.fixture
def restore_root_logger() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_configure_logging_installs_one_json_handler(
    restore_root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("debug", service="api")

    logging.getLogger("tracking.test").debug("ready on %s", 8080, extra={"port": 8080})

    (handler,) = restore_root_logger.handlers
    assert isinstance(handler.formatter, JsonLogFormatter)
    assert restore_root_logger.level == logging.DEBUG
    (line,) = capsys.readouterr().err.splitlines()
    entry = orjson.loads(line)
    assert (entry["level"], entry["msg"], entry["port"]) == ("DEBUG", "ready on 8080", 8080)


def test_log_lines_carry_the_name_the_telemetry_resource_gets(
    restore_root_logger: logging.Logger,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    assert service_name("api-service") == "api-service"
    monkeypatch.setenv("OTEL_SERVICE_NAME", "tracking-api")
    configure_logging("info", service="api-service")

    logging.getLogger("tracking.test").info("started")

    assert service_name("api-service") == "tracking-api"
    assert restore_root_logger.handlers
    (line,) = capsys.readouterr().err.splitlines()
    assert orjson.loads(line)["service"] == "tracking-api"


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _named(name: str, message: str, *args: object) -> logging.LogRecord:
    return logging.LogRecord(name, logging.ERROR, __file__, 1, message, args, None)


def test_repeats_from_a_noisy_logger_pass_once_per_window_with_a_count() -> None:
    clock = _Clock()
    repeats = RepeatFilter(("aiokafka",), window_s=30, clock=clock)
    template = "Unable connect to node with id %s: %s"

    passed = [repeats.filter(_named("aiokafka", template, n, "refused")) for n in range(50)]
    other = repeats.filter(_named("aiokafka.consumer.fetcher", "Failed fetch from %s", 1))
    clock.now += 30
    later = _named("aiokafka", template, 1, "refused")

    assert passed == [True] + [False] * 49
    assert other  # another logger, another kind
    assert repeats.filter(later)
    assert later.__dict__["suppressed"] == 49
    assert orjson.loads(JsonLogFormatter(service="f").format(later))["suppressed"] == 49


def test_other_loggers_are_never_limited() -> None:
    repeats = RepeatFilter(("aiokafka",), window_s=30, clock=_Clock())

    for name in ("forwarder_service.consumer", "aiokafkaesque"):
        assert all(repeats.filter(_named(name, "commit failed")) for _ in range(5))


def test_the_kinds_remembered_are_bounded() -> None:
    repeats = RepeatFilter(("aiokafka",), window_s=30, clock=_Clock(), max_kinds=3)

    for n in range(10):
        assert repeats.filter(_named("aiokafka", f"built per call {n}"))

    assert len(repeats._kinds) <= 3


def test_configure_logging_limits_aiokafka_repeats(
    restore_root_logger: logging.Logger, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("info", service="forwarder")

    for n in range(20):
        logging.getLogger("aiokafka").error("Unable to update metadata from %s", n)
    logging.getLogger("forwarder_service").warning("still here")

    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [entry["msg"] for entry in lines] == ["Unable to update metadata from 0", "still here"]
