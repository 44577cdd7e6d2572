"""Suite-wide fixtures (the real Kafka broker, the local collector) and Hypothesis profiles.

Property tests and the schemathesis fuzz are derandomized by default, so ``make test`` runs the
same examples every time and never fails at random. ``make fuzz`` selects the ``fuzz`` profile:
random examples, many more of them, for a longer search.
"""

import os

from hypothesis import settings

settings.register_profile("deterministic", derandomize=True, database=None, print_blob=True)
settings.register_profile("fuzz", derandomize=False, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "deterministic"))

pytest_plugins = ["tests.support.kafka", "tests.support.cluster", "tests.support.collector"]
