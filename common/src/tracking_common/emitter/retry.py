"""The retry policy: how many attempts, and how long to wait between them.

Backoff is exponential with full jitter: before retry ``n`` (1-based) the emitter waits
``U(0, 1) * min(max_delay_s, base_delay_s * 2**(n-1))``. A ``Retry-After`` answer replaces the
computed delay, capped at ``max_retry_after_s``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import parsedate_to_datetime

__all__ = ["RetryPolicy", "parse_retry_after"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_attempts``: requests a batch may take for transient failures; None = forever.

    ``RetryPolicy.no_retry()`` is one attempt, ``RetryPolicy.up_to(n)`` at most ``n``,
    ``RetryPolicy.forever()`` (the default, as Snowplow's Python tracker) never gives up.
    Set-up failures never count against ``max_attempts``.
    """

    max_attempts: int | None = None
    base_delay_s: float = 0.5
    max_delay_s: float = 60.0
    max_retry_after_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (or None for forever)")
        if not (self.base_delay_s >= 0 and self.max_delay_s >= 0 and self.max_retry_after_s >= 0):
            raise ValueError("delays must not be negative")

    @classmethod
    def no_retry(cls, **delays: float) -> RetryPolicy:
        """One attempt only."""
        return cls(max_attempts=1, **delays)

    @classmethod
    def up_to(cls, attempts: int, **delays: float) -> RetryPolicy:
        """At most ``attempts`` requests per batch."""
        return cls(max_attempts=attempts, **delays)

    @classmethod
    def forever(cls, **delays: float) -> RetryPolicy:
        """Retry until delivered."""
        return cls(max_attempts=None, **delays)

    def gives_up_after(self, failures: int) -> bool:
        """Whether ``failures`` transient failures exhaust the policy."""
        return self.max_attempts is not None and failures >= self.max_attempts

    def delay(self, retry: int, rand: Callable[[], float]) -> float:
        """Seconds to wait before retry ``retry`` (1-based), full jitter."""
        ceiling = min(self.max_delay_s, self.base_delay_s * 2.0 ** min(retry - 1, 60))
        return float(rand()) * ceiling

    def after(self, retry_after: float | None, retry: int, rand: Callable[[], float]) -> float:
        """The wait before retry ``retry``: ``Retry-After`` (capped) if given, else backoff."""
        if retry_after is not None:
            return min(retry_after, self.max_retry_after_s)
        return self.delay(retry, rand)


def parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date); None if absent/bad."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - now()
        except (TypeError, ValueError):
            return None
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)
