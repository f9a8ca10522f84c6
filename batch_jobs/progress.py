"""Counters a person can follow: items done, errors, items/s, a latency histogram, throughput over time.

:class:`JobCounters` is what each shard stores beside its results (and what the summary merges);
:class:`ProgressBar` draws one line on a terminal as the counters move.
"""

from __future__ import annotations

import bisect
import sys
import time
from typing import TextIO

from pydantic import BaseModel, Field

# Request-latency bucket upper bounds in seconds (the last bucket is everything slower).
LATENCY_BOUNDS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


class JobCounters(BaseModel):
    """Counters of one shard or, merged, of a whole job.

    ``timeline`` counts finished items per wall-clock second (Unix seconds as keys), so shards that ran
    in parallel add up into the job's throughput over time.
    """

    items: int = 0
    errors: int = 0
    requests: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    latency_counts: list[int] = Field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_S) + 1))
    timeline: dict[int, int] = Field(default_factory=dict)

    def record(self, items: int, errors: int, latency_s: float | None, now: float | None = None) -> None:
        """Count a finished request (``latency_s``) or items that failed without one (``None``)."""
        now = time.time() if now is None else now
        if self.started_at is None:
            self.started_at = now
        self.finished_at = now
        self.items += items
        self.errors += errors
        self.timeline[int(now)] = self.timeline.get(int(now), 0) + items
        if latency_s is not None:
            self.requests += 1
            self.latency_counts[bisect.bisect_left(LATENCY_BOUNDS_S, latency_s)] += 1

    @property
    def seconds(self) -> float:
        """Wall-clock seconds from the first to the last recorded item."""
        if self.started_at is None or self.finished_at is None:
            return 0.0
        return max(self.finished_at - self.started_at, 0.0)

    @property
    def items_per_s(self) -> float:
        """Items per second over :attr:`seconds` (0 before two timestamps exist)."""
        return self.items / self.seconds if self.seconds > 0 else 0.0

    def latency_quantile_s(self, quantile: float) -> float | None:
        """The upper bound of the bucket holding the ``quantile`` of request latencies (``None``: no requests)."""
        total = sum(self.latency_counts)
        if not total:
            return None
        seen = 0
        for index, count in enumerate(self.latency_counts):
            seen += count
            if seen >= quantile * total:
                return LATENCY_BOUNDS_S[index] if index < len(LATENCY_BOUNDS_S) else float("inf")
        return float("inf")

    @classmethod
    def merged(cls, parts: list[JobCounters]) -> JobCounters:
        """The sum of several shards' counters."""
        total = cls()
        for part in parts:
            total.items += part.items
            total.errors += part.errors
            total.requests += part.requests
            total.latency_counts = [a + b for a, b in zip(total.latency_counts, part.latency_counts, strict=True)]
            for second, count in part.timeline.items():
                total.timeline[second] = total.timeline.get(second, 0) + count
            starts = [value for value in (total.started_at, part.started_at) if value is not None]
            ends = [value for value in (total.finished_at, part.finished_at) if value is not None]
            total.started_at = min(starts) if starts else None
            total.finished_at = max(ends) if ends else None
        return total


class ProgressBar:
    """One self-overwriting line on a terminal (a line every few seconds when not a terminal)."""

    def __init__(self, total: int, stream: TextIO | None = None, width: int = 30) -> None:
        """Draw progress towards ``total`` items on ``stream`` (stderr by default)."""
        self.total = total
        self.stream = stream or sys.stderr
        self.width = width
        self.tty = self.stream.isatty()
        self.started = time.monotonic()
        self._last_draw = 0.0

    def line(self, done: int, errors: int, concurrency: int, elapsed_s: float) -> str:
        """The text of the bar for these counters."""
        share = done / self.total if self.total else 1.0
        filled = int(share * self.width)
        rate = done / elapsed_s if elapsed_s > 0 else 0.0
        bar = "#" * filled + "-" * (self.width - filled)
        return (
            f"[{bar}] {done:,}/{self.total:,} items {share:6.1%}  {rate:,.0f} items/s  "
            f"errors {errors:,}  in flight ≤{concurrency}"
        )

    def update(self, done: int, errors: int, concurrency: int, *, final: bool = False) -> None:
        """Redraw (at most 10 times a second on a terminal, every 5 s otherwise, and always when ``final``)."""
        now = time.monotonic()
        if not final and now - self._last_draw < (0.1 if self.tty else 5.0):
            return
        self._last_draw = now
        text = self.line(done, errors, concurrency, now - self.started)
        self.stream.write(("\r" + text + ("\n" if final else "")) if self.tty else text + "\n")
        self.stream.flush()
