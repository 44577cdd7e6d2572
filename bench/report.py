"""Render ``bench/results.json`` as ``bench/report.png``: each throughput against its ceiling.

One panel per comparison, drawn only when its measured figure is present (benchmarks that did
not run leave no empty panel): the API's single-event rate against a no-op endpoint on the same
server, its batch rate against a raw producer, the forwarder against a raw consumer, the emitter
against the Snowplow Python tracker's emitters; then peak memory against each configured bound.

Usage: ``python -m bench.report [results.json] [report.png]``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib as mpl

mpl.use("Agg")  # files only; never a display

import matplotlib.pyplot as plt  # after mpl.use: the backend must be chosen first
from matplotlib.axes import Axes

from bench.results import RESULTS_PATH, load

REPORT_PATH = RESULTS_PATH.with_name("report.png")
MEASURED_COLOUR = "#2b6cb0"
CEILING_COLOUR = "#a0aec0"
BOUND_COLOUR = "#e53e3e"


@dataclass(frozen=True, slots=True)
class Comparison:
    """A measured figure and the ceilings it is read against."""

    title: str
    unit: str
    measured: tuple[str, str]
    ceilings: tuple[tuple[str, str], ...]


COMPARISONS: tuple[Comparison, ...] = (
    Comparison(
        "API, single events", "requests/s", ("API", "api_single_rps"),
        (
            ("no-op endpoint", "noop_single_rps"),
            ("minimal FastAPI", "fastapi_min_rps"),
            ("bare ASGI", "bare_asgi_rps"),
        ),
    ),
    Comparison(
        "API, batches", "events/s", ("API", "api_batch_events_per_s"),
        (
            ("raw producer, send", "raw_producer_send_events_per_s"),
            ("raw producer, batches", "raw_producer_batch_events_per_s"),
        ),
    ),
    Comparison(
        "Producer library, send_many of 500", "events/s", ("library", "producer_events_per_s"),
        (("raw producer, same run", "producer_raw_events_per_s"),),
    ),
    Comparison(
        "Forwarder", "events/s", ("forwarder", "forwarder_events_per_s"),
        (("raw consumer", "raw_consumer_events_per_s"),),
    ),
    Comparison("Emitter", "events/s", ("emitter", "emitter_events_per_s"), ()),
)  # fmt: skip
_SNOWPLOW = re.compile(r"^snowplow_(?P<name>\w+?)_events_per_s$")
_MEMORY = re.compile(r"^(?P<part>\w+?)_(?:peak_mem|peak_rss|rss)_mb$")
_BOUND = re.compile(r"^(?P<part>\w+?)_(?:memory_bound|mem_bound|bound)_mb$")


def _ceilings(comparison: Comparison, figures: Mapping[str, float]) -> list[tuple[str, float]]:
    named = list(comparison.ceilings)
    if comparison.measured[1] == "emitter_events_per_s":
        # Every Snowplow emitter the benchmark measured, whatever their number.
        for key in sorted(figures):
            match = _SNOWPLOW.match(key)
            if match:
                named.append((f"snowplow {match['name'].replace('_', ' ')}", key))
    return [(label, figures[key]) for label, key in named if key in figures]


def _throughput(axes: Axes, comparison: Comparison, figures: Mapping[str, float]) -> None:
    label, key = comparison.measured
    bars = [(label, figures[key]), *_ceilings(comparison, figures)]
    colours = [MEASURED_COLOUR] + [CEILING_COLOUR] * (len(bars) - 1)
    container = axes.bar([b[0] for b in bars], [b[1] for b in bars], color=colours)
    axes.bar_label(container, fmt="{:,.0f}", fontsize=8)
    title = comparison.title
    if len(bars) > 1 and max(b[1] for b in bars[1:]) > 0:
        ratio = bars[0][1] / max(b[1] for b in bars[1:])
        title += f"\n{ratio:.2f}x the best comparison"
    axes.set_title(title, fontsize=10)
    axes.set_ylabel(comparison.unit)
    axes.tick_params(axis="x", labelsize=8, rotation=15)


def memory_pairs(figures: Mapping[str, float]) -> dict[str, tuple[float | None, float | None]]:
    """``part -> (peak MB, bound MB)`` for every part with either figure."""
    pairs: dict[str, tuple[float | None, float | None]] = {}
    for key, value in figures.items():
        for pattern, slot in ((_MEMORY, 0), (_BOUND, 1)):
            match = pattern.match(key)
            if match:
                current = list(pairs.get(match["part"], (None, None)))
                current[slot] = value
                pairs[match["part"]] = (current[0], current[1])
    return dict(sorted(pairs.items()))


def _memory(axes: Axes, pairs: Mapping[str, tuple[float | None, float | None]]) -> None:
    width = 0.4
    for index, (peak, bound) in enumerate(pairs.values()):
        if peak is not None:
            axes.bar(index - width / 2, peak, width, color=MEASURED_COLOUR)
            axes.annotate(f"{peak:.0f}", (index - width / 2, peak), ha="center", va="bottom")
        if bound is not None:
            axes.bar(index + width / 2, bound, width, color="none", edgecolor=BOUND_COLOUR)
            axes.annotate(f"{bound:.0f}", (index + width / 2, bound), ha="center", va="bottom")
    axes.set_xticks(range(len(pairs)), [p.replace("_", " ") for p in pairs], fontsize=8)
    axes.tick_params(axis="x", rotation=15)
    axes.set_title("Peak memory (filled) against bound (outline)", fontsize=10)
    axes.set_ylabel("MB")


def render(figures: Mapping[str, float], out: Path) -> list[str]:
    """Draw the panels whose figures exist into ``out``; return their titles."""
    drawn = [c for c in COMPARISONS if c.measured[1] in figures]
    pairs = memory_pairs(figures)
    panels = len(drawn) + (1 if pairs else 0)
    columns = max(1, min(3, panels))
    rows = max(1, -(-panels // columns))
    fig, grid = plt.subplots(rows, columns, figsize=(5 * columns, 4 * rows), squeeze=False)
    cells = [axes for row in grid for axes in row]
    titles: list[str] = []
    try:
        for axes, comparison in zip(cells, drawn, strict=False):
            _throughput(axes, comparison, figures)
            titles.append(comparison.title)
        if pairs:
            _memory(cells[len(drawn)], pairs)
            titles.append("Peak memory")
        for axes in cells[panels:]:
            axes.axis("off")
        if not panels:
            cells[0].text(0.5, 0.5, "no benchmark figures yet", ha="center", va="center")
        fig.suptitle("Throughput against its ceilings (bench/results.json)")
        fig.tight_layout()
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=110)
    finally:
        plt.close(fig)
    return titles


def main(argv: Sequence[str] | None = None) -> int:
    """Read the results file and write the chart."""
    args = list(sys.argv[1:] if argv is None else argv)
    source = Path(args[0]) if args else RESULTS_PATH
    out = Path(args[1]) if len(args) > 1 else REPORT_PATH
    titles = render(load(source), out)
    print(f"wrote {out} ({', '.join(titles) or 'no figures'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
