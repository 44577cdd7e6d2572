"""How many examples a property test or fuzz tries: a fixed few in ``make test``, many more
(and random ones) in ``make fuzz``, which sets ``HYPOTHESIS_PROFILE=fuzz``."""

from __future__ import annotations

import os

FUZZ_FACTOR = 40


def examples(count: int) -> int:
    """``count`` in the deterministic suite, ``FUZZ_FACTOR`` times as many under ``make fuzz``."""
    return count * FUZZ_FACTOR if os.environ.get("HYPOTHESIS_PROFILE") == "fuzz" else count
