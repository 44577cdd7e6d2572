"""The garbage collector's settings for a service's hot path (called once, after start-up).

A request's objects are freed by reference counting (the hot path builds no cycles), yet
CPython collects the youngest generation every 700 allocations, and every tenth of those the
next, which walks everything start-up left behind (modules, the FastAPI app, schemas). A batch
of 100 events allocates thousands of objects, so on the API the collector cost 5.3-5.7 us an
event of ``Ingestor.v1`` (gc callbacks, 48 batches held as in flight, after the API's imports)
and next to nothing tuned: start-up objects frozen out of the collector's view, and the
youngest generation collected every :data:`GEN0_THRESHOLD` allocations.
"""

from __future__ import annotations

import gc
from typing import Final

__all__ = ["GEN0_THRESHOLD", "tune_gc"]

GEN0_THRESHOLD: Final = 50_000


def tune_gc() -> None:
    """Freeze what start-up allocated and collect the young generation less often."""
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, max(gen1, 20), max(gen2, 100))
