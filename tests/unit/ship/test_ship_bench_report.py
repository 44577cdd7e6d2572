"""bench/report.py draws what it has and tolerates what it lacks."""

from __future__ import annotations

import json
from pathlib import Path

from bench import report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

FULL = {
    "api_single_rps": 4100.0,
    "noop_single_rps": 5200.0,
    "api_batch_events_per_s": 61000.0,
    "raw_producer_events_per_s": 90000.0,
    "raw_producer_send_events_per_s": 90000.0,
    "raw_producer_batch_events_per_s": 85000.0,
    "bare_asgi_rps": 22700.0,
    "fastapi_min_rps": 6500.0,
    "forwarder_events_per_s": 30000.0,
    "raw_consumer_events_per_s": 120000.0,
    "emitter_events_per_s": 35000.0,
    "snowplow_emitter_events_per_s": 19000.0,
    "snowplow_async_emitter_events_per_s": 16000.0,
    "forwarder_peak_mem_mb": 140.0,
    "forwarder_memory_bound_mb": 190.0,
    "emitter_peak_mem_mb": 55.0,
}


def test_renders_every_comparison_and_memory(tmp_path: Path) -> None:
    out = tmp_path / "report.png"
    titles = report.render(FULL, out)
    assert titles == [
        "API, single events",
        "API, batches",
        "Forwarder",
        "Emitter",
        "Peak memory",
    ]
    assert out.read_bytes().startswith(PNG_MAGIC)


def test_missing_figures_leave_their_panels_out(tmp_path: Path) -> None:
    figures = {"emitter_events_per_s": 35000.0, "noop_single_rps": 5200.0}
    titles = report.render(figures, tmp_path / "partial.png")
    assert titles == ["Emitter"]
    assert (tmp_path / "partial.png").read_bytes().startswith(PNG_MAGIC)


def test_no_figures_still_writes_a_chart(tmp_path: Path) -> None:
    assert report.render({}, tmp_path / "empty.png") == []
    assert (tmp_path / "empty.png").read_bytes().startswith(PNG_MAGIC)


def test_memory_pairs_a_peak_with_its_bound() -> None:
    pairs = report.memory_pairs(FULL)
    assert pairs == {"emitter": (55.0, None), "forwarder": (140.0, 190.0)}


def test_snowplow_emitters_are_the_emitters_ceilings() -> None:
    emitter = next(c for c in report.COMPARISONS if c.title == "Emitter")
    labels = [label for label, _ in report._ceilings(emitter, FULL)]
    assert labels == ["snowplow async emitter", "snowplow emitter"]


def test_main_reads_a_results_file(tmp_path: Path) -> None:
    source = tmp_path / "results.json"
    source.write_text(json.dumps(FULL))
    assert report.main([str(source), str(tmp_path / "out.png")]) == 0
    assert (tmp_path / "out.png").is_file()


def test_the_api_is_read_against_baselines_it_does_not_control() -> None:
    single, batches = report.COMPARISONS[0], report.COMPARISONS[1]
    assert [label for label, _ in report._ceilings(single, FULL)] == [
        "no-op endpoint",
        "minimal FastAPI",
        "bare ASGI",
    ]
    assert [value for _, value in report._ceilings(batches, FULL)] == [90000.0, 85000.0]
