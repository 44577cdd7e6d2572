"""``make chaos``: every fault scenario on a three-node cluster, in full, then a table.

Runs ``tests/integration/chaos`` with ``CHAOS_FULL=1`` (longer phases, every node restarted,
the scenarios ``make test`` leaves out), prints acknowledged, arrived, lost, duplicates and
refusals per scenario, and merges ``chaos_<scenario>_lost``, ``_duplicates``, ``_refused_s``
(and the counts) into ``bench/results.json``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TypedDict

from bench.results import record

COLUMNS = ("acknowledged", "arrived", "lost", "duplicates", "refused", "refused_s")


class ScenarioRow(TypedDict):
    """One scenario as the test session writes it (``tests/integration/chaos/conftest.py``)."""

    figures: dict[str, float]
    arrived: int
    failures: dict[str, int]
    slowest_s: float


def table(rows: dict[str, ScenarioRow]) -> str:
    """The scenarios' figures as a fixed-width table."""
    lines = [f"{'scenario':<24}" + "".join(f"{column:>14}" for column in COLUMNS)]
    for name, row in sorted(rows.items()):
        figures = row["figures"]
        values = {column: figures.get(f"chaos_{name}_{column}") for column in COLUMNS}
        values["arrived"] = row["arrived"]
        lines.append(f"{name:<24}" + "".join(f"{values[column]!s:>14}" for column in COLUMNS))
    return "\n".join(lines)


def main() -> int:
    """Run the scenarios; print and record what they measured; exit as pytest did."""
    with tempfile.TemporaryDirectory() as folder:
        results = Path(folder) / "chaos.json"
        env = {**os.environ, "CHAOS_FULL": "1", "CHAOS_RESULTS": str(results)}
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)  # the scenarios start their own cluster
        command = [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-s",
            "--timeout=1800", "tests/integration/chaos",
        ]  # fmt: skip
        code = subprocess.run(command, env=env, check=False).returncode  # noqa: S603
        if not results.exists():
            print("no scenario finished", file=sys.stderr)
            return code or 1
        rows: dict[str, ScenarioRow] = json.loads(results.read_text())
    print()
    print(table(rows))
    print()
    figures: dict[str, float] = {}
    for row in rows.values():
        figures.update(row["figures"])
    record(figures)
    return code


if __name__ == "__main__":
    sys.exit(main())
