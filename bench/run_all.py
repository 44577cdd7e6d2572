"""``make bench``: every benchmark, one after another, then the chart.

Each benchmark runs in its own process (so one's memory or threads never skew another's) and
merges its figures into ``bench/results.json``; ``bench.report`` renders ``bench/report.png``.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time

BENCHMARKS = (
    "bench.bench_emitter",
    "bench.bench_api",
    "bench.bench_producer",
    "bench.bench_forwarder",
)


def main() -> int:
    """Run the benchmarks; exit non-zero if any failed (after running the rest)."""
    failed: list[str] = []
    for module in BENCHMARKS:
        if importlib.util.find_spec(module) is None:
            print(f"== {module}: not present, skipped")
            continue
        print(f"== {module}", flush=True)
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", module], check=False)  # noqa: S603
        print(f"== {module}: exit {result.returncode} in {time.monotonic() - started:.0f} s\n")
        if result.returncode != 0:
            failed.append(module)
    if importlib.util.find_spec("bench.report") is not None:
        subprocess.run([sys.executable, "-m", "bench.report"], check=False)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
