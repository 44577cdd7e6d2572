"""Read and merge benchmark figures into ``bench/results.json`` (``{"figure_name": number}``).

Each benchmark script records its own figures with :func:`record`; figures from other
scripts already in the file are kept, so ``make bench`` can run the scripts one after another.
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS_PATH = Path(__file__).resolve().parent / "results.json"


def load(path: Path = RESULTS_PATH) -> dict[str, float]:
    """The figures recorded so far (empty if none)."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {str(k): float(v) for k, v in data.items()}


def record(figures: dict[str, float], path: Path = RESULTS_PATH) -> None:
    """Merge ``figures`` into the results file and print them."""
    merged = load(path)
    merged.update({k: round(float(v), 3) for k, v in figures.items()})
    path.write_text(json.dumps(merged, indent=2, sort_keys=True) + "\n")
    for name, value in sorted(figures.items()):
        print(f"  {name:<44} {value:>14,.2f}")


def ratio_line(label: str, numerator: float, denominator: float, target: float | None) -> str:
    """A printable ratio, with the target when there is one."""
    ratio = numerator / denominator if denominator else float("inf")
    verdict = ""
    if target is not None:
        verdict = f"  (target >= {target:g}: {'met' if ratio >= target else 'NOT met'})"
    return f"  {label:<44} {ratio:>8.2f}x{verdict}"
