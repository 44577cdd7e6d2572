"""Shared conventions for OpenTelemetry instruments (API only; no SDK needed here).

Pass these as ``explicit_bucket_boundaries_advisory`` when creating histograms, so every
latency histogram of the pipeline is in seconds with the same buckets, whatever the exporter.
"""

from __future__ import annotations

from typing import Final

__all__ = ["AGE_BUCKETS_S", "BATCH_SIZE_BUCKETS", "LATENCY_BUCKETS_S"]

LATENCY_BUCKETS_S: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)
"""Bucket boundaries, in seconds, for request and produce latency histograms."""

BATCH_SIZE_BUCKETS: Final = (1, 2, 5, 10, 25, 50, 100, 200, 500, 1000, 5000)
"""Bucket boundaries for histograms of events per batch."""

AGE_BUCKETS_S: Final = (
    0.1,
    *LATENCY_BUCKETS_S[LATENCY_BUCKETS_S.index(0.5) :],  # then half a second to 30 s
    *(60.0 * minutes for minutes in (1, 5, 15, 60, 360)),
    *(86400.0 * days for days in (1, 3, 7)),
)
"""Bucket boundaries, in seconds, for event ages (freshness): from sub-second to a week, the
span of a topic's retention."""
