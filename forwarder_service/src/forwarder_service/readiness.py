"""The forwarder's readiness: one set of checks behind both ``/readyz`` and the ``ready`` gauge.

Each check is a callable read at probe or scrape time, so the probe and the metric can never
disagree (a collector setup failure fails both).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

__all__ = ["Readiness"]


class Readiness:
    """Named checks; ready when every one passes."""

    def __init__(self, checks: Mapping[str, Callable[[], bool]]) -> None:
        self._checks = dict(checks)

    def checks(self) -> dict[str, bool]:
        """Each check's current result, by name (the body of ``/readyz``)."""
        return {name: bool(check()) for name, check in self._checks.items()}

    def ready(self) -> bool:
        """True when every check passes."""
        return all(check() for check in self._checks.values())
