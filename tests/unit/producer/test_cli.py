"""tracking-produce on a fake of the Publisher port: arguments, exit codes, the summary by line
number, the rejects file, dry runs, lines Kafka did not take, and the pacing of --rate."""

from __future__ import annotations

import asyncio
import io
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import pytest
from tracking_common.messages import Message
from tracking_producer import EventProducer, KafkaRefusedError
from tracking_producer.cli import main, parse_args, run
from tracking_producer.lines import Pacer
from tracking_producer.report import Report

from tests.support.waiting import wait_until
from tests.unit.api_service.api_support import FakePublisher


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """``main`` configures logging as an entry point does; here it runs inside the test
    process, so what it set is put back for the tests that follow."""
    client = logging.getLogger("aiokafka")
    level, handlers = client.level, list(logging.getLogger().handlers)
    yield
    client.setLevel(level)
    logging.getLogger().handlers[:] = handlers


GOOD = b'{"event_type":"page_view","page":{"url":"https://a.example/"}}'
PAYLOAD = b'{"e":"se","p":"srv","tv":"py-1","se_ca":"c","se_ac":"a"}'


def write(tmp_path: Path, *lines: bytes) -> str:
    """A JSON lines file of ``lines``."""
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return str(path)


async def produce(
    argv: list[str], publisher: FakePublisher, rejects: io.BytesIO | None = None
) -> tuple[int, Report]:
    """Run the command line's loop on ``publisher``: the exit code and the report."""
    args = parse_args(argv)
    producer = EventProducer(produce_timeout_s=0.2, batch_size=args.batch_size, publisher=publisher)
    report = Report(rejects=rejects)
    return await run(args, producer, report), report


async def test_good_lines_are_produced_and_bad_ones_reported_by_line_number(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD, b"not json", b"", b'{"event_type":"page_view"}', b"[1]", GOOD)
    publisher, rejects = FakePublisher(), io.BytesIO()

    code, report = await produce([path, "--batch-size", "2"], publisher, rejects)

    assert code == 1
    assert report.produced == 2
    assert len(publisher.messages) == 2
    assert [(line.number, issues[0].code) for line, issues in report.rejected] == [
        (2, "invalid_json"),
        (4, "missing"),
        (5, "invalid_type"),
    ]
    summary = report.summary(dry_run=False)
    assert "5 lines: 2 produced, 3 rejected, 0 failed" in summary
    assert f"{path}:4: /page missing: Field required" in summary
    written = [orjson.loads(line) for line in rejects.getvalue().splitlines()]
    assert [(doc["line"], doc["errors"][0]["code"], doc["raw"]) for doc in written] == [
        (2, "invalid_json", "not json"),
        (4, "missing", '{"event_type":"page_view"}'),
        (5, "invalid_type", "[1]"),
    ]


async def test_every_line_produced_exits_0(tmp_path: Path) -> None:
    code, report = await produce([write(tmp_path, GOOD, GOOD)], FakePublisher())
    assert (code, report.produced) == (0, 2)


async def test_tracker_protocol_lines(tmp_path: Path) -> None:
    publisher = FakePublisher()
    path = write(tmp_path, PAYLOAD, GOOD)
    code, report = await produce([path, "--tracker-protocol"], publisher)
    assert code == 1
    assert report.produced == 1
    assert report.rejected[0][0].number == 2  # a /v1 event is not a payload


async def test_a_dry_run_checks_and_produces_nothing(tmp_path: Path) -> None:
    publisher = FakePublisher()
    code, report = await produce([write(tmp_path, GOOD, GOOD), "--dry-run"], publisher)
    assert (code, report.valid, publisher.calls) == (0, 2, 0)
    assert "2 valid" in report.summary(dry_run=True)


async def test_lines_kafka_did_not_take_are_reported_and_later_ones_not_attempted(
    tmp_path: Path,
) -> None:
    publisher = FakePublisher()
    publisher.connected = False
    path = write(tmp_path, GOOD, GOOD, b"{}", GOOD)

    code, report = await produce([path, "--batch-size", "2"], publisher)

    assert code == 1
    assert report.produced == 0
    assert [failure.line.number for failure in report.failed] == [1, 2, 4]
    assert "did not acknowledge" in report.failed[0].reason
    assert "not attempted after Kafka failed" in report.failed[2].reason
    assert publisher.calls == 0  # the first batch timed out waiting for a connection
    assert report.rejected[0][0].number == 3
    assert "not produced (Kafka did not acknowledge" in report.summary(dry_run=False)


def test_usage_and_configuration_errors_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as usage:
        main(["--batch-size", "0"])
    assert usage.value.code == 2
    monkeypatch.setenv("EVENTS_TOPIC", "not a topic!")
    assert main([write(tmp_path, GOOD), "--dry-run"]) == 2
    assert "EVENTS_TOPIC" in capsys.readouterr().err
    monkeypatch.delenv("EVENTS_TOPIC")
    assert main([str(tmp_path / "missing.jsonl"), "--dry-run"]) == 2


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVENTS_TOPIC", "from-env")
    args = parse_args(["--topic", "from-flag", "--rate", "50"])
    assert (args.topic, args.rate, args.files) == ("from-flag", 50.0, ["-"])


def test_the_progress_line_is_drawn_on_the_terminal_only_when_asked() -> None:
    terminal = io.StringIO()
    ticks = iter([0.0, 1.0, 1.0])
    report = Report(progress=terminal, clock=lambda: next(ticks))
    report.produced = 10
    report.draw(final=True)
    assert terminal.getvalue() == "\r10 lines: 10 produced, 0 rejected, 0 failed (10 lines/s)\n"


async def test_the_pacer_spaces_batches_by_the_rate() -> None:
    now = [0.0]
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    pacer = Pacer(100, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        await pacer.take(50)
    assert slept == [0.5, 0.5]
    unlimited: list[Any] = []
    await Pacer(0, sleep=sleep).take(10**6)
    assert unlimited == []


class StalledPublisher(FakePublisher):
    """A publisher that never hears back from Kafka."""

    async def publish(self, messages: Sequence[Message]) -> None:
        """Count the call, then wait forever."""
        self.calls += 1
        await asyncio.Event().wait()


async def test_lines_in_flight_when_interrupted_are_reported(tmp_path: Path) -> None:
    publisher = StalledPublisher()
    args = parse_args([write(tmp_path, GOOD, GOOD)])
    report = Report()
    producer = EventProducer(produce_timeout_s=60, publisher=publisher)
    running = asyncio.create_task(run(args, producer, report))
    await wait_until(lambda: publisher.calls == 1, 10, "the batch never reached the publisher")

    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running

    assert [failure.reason for failure in report.failed] == [
        "interrupted before Kafka acknowledged"
    ] * 2


async def test_kafka_refusing_the_credentials_stops_the_run_reporting_the_batch(
    tmp_path: Path,
) -> None:
    publisher = FakePublisher()
    publisher.connected = False
    publisher.refusal = ValueError("KAFKA_SASL_PASSWORD: authentication failed")  # type: ignore[attr-defined]

    with pytest.raises(KafkaRefusedError):
        await produce([write(tmp_path, GOOD, GOOD, GOOD), "--batch-size", "2"], publisher)


def test_main_reports_the_lines_and_exits_2_when_kafka_refuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    publisher = FakePublisher()
    publisher.connected = False
    publisher.refusal = ValueError("KAFKA_SASL_PASSWORD: authentication failed")  # type: ignore[attr-defined]
    monkeypatch.setattr(
        "tracking_producer.cli.producer_for",
        lambda settings, batch_size: EventProducer(batch_size=batch_size, publisher=publisher),
    )

    assert main([write(tmp_path, GOOD, GOOD, GOOD), "--batch-size", "2"]) == 2

    err = capsys.readouterr().err
    assert "3 lines" not in err  # the third was never read
    assert "2 lines: 0 produced, 0 rejected, 2 failed" in err
    assert "KAFKA_SASL_PASSWORD" in err


def test_standard_input_is_read_when_no_file_is_given(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    read_end, write_end = os.pipe()
    os.write(write_end, GOOD + b"\n\n" + b'{"event_type":"page_view"}')  # no final newline
    os.close(write_end)
    with os.fdopen(read_end) as stdin:
        monkeypatch.setattr("sys.stdin", stdin)
        assert main(["--dry-run", "--no-progress"]) == 1

    err = capsys.readouterr().err
    assert "2 lines: 1 valid, 1 rejected, 0 failed" in err
    assert "line 3: /page missing" in err
