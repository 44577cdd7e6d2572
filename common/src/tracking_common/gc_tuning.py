"""The garbage collector's settings for a service's hot path (called once, after start-up).

The data paths free their objects by reference counting (they build no cycles), yet CPython
collects the youngest generation every 700 allocations, and every tenth of those the next,
which walks everything start-up left behind (modules, apps, schemas) and everything held in
flight. Measured: on the API the collector cost 5.3-5.7 us an event of ``Ingestor.v1`` (gc
callbacks, 48 batches of 100 held as in flight); on the forwarder, with its backlog at 20,000
records (each holding a few containers), 5.6-6.5 us per record (``bench.forwarder_stages``),
more than its contract check. Tuned (start-up objects frozen out of the collector's view, the
youngest generation collected every :data:`GEN0_THRESHOLD` allocations): next to nothing on
the API, 0.3-0.6 us per record on the forwarder.
"""

from __future__ import annotations

import gc
from typing import Final

__all__ = ["GEN0_THRESHOLD", "tune_gc"]

GEN0_THRESHOLD: Final = 50_000


def tune_gc(*, gen0_threshold: int = GEN0_THRESHOLD) -> None:
    """Freeze what start-up allocated and collect the young generation less often: every
    ``gen0_threshold`` allocations (net of deallocations) of container objects.

    A service that holds many objects for a while (the forwarder's backlog) passes a threshold
    above what it holds at most, so holding them never triggers a collection.
    """
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(gen0_threshold, max(gen1, 20), max(gen2, 100))
