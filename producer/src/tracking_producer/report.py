"""What ``tracking-produce`` says: a progress line on a terminal, the summary, the rejects file
and the exit code.

Every line ends up in exactly one of three counts: produced (Kafka acknowledged it), rejected
(not JSON, or invalid: with its reasons) or failed (valid, but not acknowledged by Kafka; it may
still have landed).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import IO, Final

import orjson
from tracking_common.errors import ValidationIssue

from tracking_producer.lines import Line

__all__ = ["EXIT_INCOMPLETE", "EXIT_OK", "EXIT_USAGE", "Report"]

EXIT_OK: Final = 0
EXIT_INCOMPLETE: Final = 1  # some lines rejected or not produced
EXIT_USAGE: Final = 2  # bad arguments or configuration
SHOWN: Final = 20  # rejected and failed lines listed in the summary (all are in --rejects)
PROGRESS_EVERY_S: Final = 0.1


@dataclass(slots=True)
class _Failure:
    line: Line
    reason: str


@dataclass(slots=True)
class Report:
    """The tally of one run; ``progress`` is the terminal to draw on (None: no progress line)."""

    rejects: IO[bytes] | None = None
    progress: IO[str] | None = None
    clock: Callable[[], float] = time.monotonic
    produced: int = 0
    valid: int = 0  # checked only (dry run)
    rejected: list[tuple[Line, Sequence[ValidationIssue]]] = field(default_factory=list)
    failed: list[_Failure] = field(default_factory=list)
    _started: float = field(init=False)
    _drawn: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self._started = self.clock()

    @property
    def lines(self) -> int:
        """Lines settled so far."""
        return self.produced + self.valid + len(self.rejected) + len(self.failed)

    def reject(self, line: Line, issues: Sequence[ValidationIssue]) -> None:
        """``line`` is not an event: recorded with its reasons (and in the rejects file)."""
        self.rejected.append((line, issues))
        if self.rejects is not None:
            document = {
                "source": line.source,
                "line": line.number,
                "errors": [issue.as_dict() for issue in issues],
                "raw": line.raw.decode("utf-8", "replace"),
            }
            self.rejects.write(orjson.dumps(document) + b"\n")

    def fail(self, lines: Sequence[Line], reason: str) -> None:
        """``lines`` are valid but Kafka did not acknowledge them."""
        self.failed += [_Failure(line, reason) for line in lines]

    def draw(self, *, final: bool = False) -> None:
        """Redraw the progress line (at most every 0.1 s; always when ``final``)."""
        if self.progress is None:
            return
        now = self.clock()
        if not final and now - self._drawn < PROGRESS_EVERY_S:
            return
        self._drawn = now
        rate = self.lines / max(now - self._started, 1e-9)
        done = f"{self.valid:,} valid" if self.valid else f"{self.produced:,} produced"
        self.progress.write(
            f"\r{self.lines:,} lines: {done}, {len(self.rejected):,} rejected, "
            f"{len(self.failed):,} failed ({rate:,.0f} lines/s)"
        )
        if final:
            self.progress.write("\n")
        self.progress.flush()

    def summary(self, *, dry_run: bool) -> str:
        """The end-of-run text: counts, then the rejected and failed lines (the first few)."""
        done = f"{self.valid:,} valid" if dry_run else f"{self.produced:,} produced"
        out = [
            f"tracking-produce: {self.lines:,} lines: {done}, {len(self.rejected):,} rejected, "
            f"{len(self.failed):,} failed" + (" (dry run: nothing produced)" if dry_run else "")
        ]
        if self.rejected:
            out.append("rejected:")
            for line, issues in self.rejected[:SHOWN]:
                reasons = "; ".join(f"{i.path or '/'} {i.code}: {i.message}" for i in issues)
                out.append(f"  {line.where}: {reasons}")
            out += _more(len(self.rejected))
        if self.failed:
            out.append("not produced (Kafka did not acknowledge; they may still have landed):")
            out += [f"  {failure.line.where}: {failure.reason}" for failure in self.failed[:SHOWN]]
            out += _more(len(self.failed))
        return "\n".join(out)

    @property
    def exit_code(self) -> int:
        """0 when every line was produced (or, in a dry run, valid); 1 otherwise."""
        return EXIT_INCOMPLETE if self.rejected or self.failed else EXIT_OK


def _more(count: int) -> list[str]:
    return [f"  ... and {count - SHOWN:,} more"] if count > SHOWN else []
