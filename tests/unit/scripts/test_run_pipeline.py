"""``make run`` waits for its broker quietly, saying once that it is starting."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from scripts import run_pipeline
from scripts.kafka.broker import answers, free_port


class _SlowBroker:
    """Starts as the real broker does from the client's side: refused probes, then up."""

    probes = 3

    def __init__(self, run_dir: Path, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.log_path = run_dir / "broker.log"

    def pid(self) -> int | None:
        return None

    def start(self) -> None:
        for _ in range(self.probes):
            assert not answers(self.bootstrap, timeout_s=2.0)


def test_waiting_for_the_broker_logs_no_connection_errors(
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", f"127.0.0.1:{free_port()}")
    monkeypatch.setattr(run_pipeline, "broker_at", _SlowBroker)
    caplog.set_level(logging.DEBUG)

    run_pipeline.Pipeline().start_broker()

    assert [r.getMessage() for r in caplog.records if r.name.startswith("aiokafka")] == []
    assert capsys.readouterr().out.count("starting") == 1
    assert logging.getLogger("aiokafka").level == logging.NOTSET  # restored afterwards
