"""How many requests to keep in flight: additive increase, multiplicative decrease (AIMD).

The controller first measures the predictor unloaded (``baseline_samples`` requests, one at a time)
and takes their median latency as the baseline; it measures it again every ``baseline_interval_s``
(the requests in flight finish, a few go one at a time, then the limit it had is back), because the
unloaded latency moves with the predictor's host: on a busy node every answer is slower, and against a
stale baseline that slowness would read as overload and hold the limit low while the predictor has
room. After that, every answer in time adds ``1 / limit``
(one more request in flight per round of answers) up to ``max_concurrency``; when the median latency of
the last round of answers is above ``latency_tolerance`` times the baseline, or on a 429/503, the limit
is halved, at most once per round (answers to requests sent before a decrease say nothing about the new
limit). A median, not a mean: one stalled answer on a shared machine must not halve the limit. A round
median below the baseline lowers the baseline (the first samples may have met a busy moment). A
``Retry-After`` pauses new requests until it has passed. The controller is pure: the client feeds it
answers and the clock.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from serving_core.errors import InvalidInputError


@dataclass(frozen=True)
class AimdSettings:
    """The knobs of the adaptive concurrency.

    Attributes:
        max_concurrency: never more requests in flight than this.
        latency_tolerance: back off when a round's median latency exceeds this multiple of the baseline.
        decrease_factor: the limit is multiplied by this on a back-off.
        baseline_samples: unloaded requests measured (one at a time) before the limit grows; also the
            fewest answers a round's median is taken over.
        default_backoff_s: the pause after a 429/503 without Retry-After.
        baseline_interval_s: seconds between measurements of the unloaded latency (0: only the first).
    """

    max_concurrency: int = 64
    latency_tolerance: float = 2.0
    decrease_factor: float = 0.5
    baseline_samples: int = 8
    default_backoff_s: float = 0.2
    baseline_interval_s: float = 5.0

    def __post_init__(self) -> None:
        """Refuse knobs that cannot work.

        Raises:
            InvalidInputError: a value out of range, named with its limits.
        """
        if self.max_concurrency < 1:
            raise InvalidInputError(f"max concurrency {self.max_concurrency} is below 1", hint="use 1 or more")
        if self.latency_tolerance <= 1.0:
            raise InvalidInputError(
                f"latency tolerance {self.latency_tolerance:g} is not above 1",
                hint="use a multiple of the unloaded latency above 1, e.g. 2",
            )
        if not 0.0 < self.decrease_factor < 1.0:
            raise InvalidInputError(f"decrease factor {self.decrease_factor:g} is not in (0, 1)", hint="use 0.5")
        if self.baseline_samples < 1:
            raise InvalidInputError(f"baseline samples {self.baseline_samples} is below 1", hint="use 8")
        if self.baseline_interval_s < 0:
            raise InvalidInputError(
                f"baseline interval {self.baseline_interval_s:g} s is negative", hint="use 5, or 0 to measure once"
            )


@dataclass
class AimdController:
    """The current concurrency limit and the evidence it is based on."""

    settings: AimdSettings
    limit: float = 1.0
    baseline_s: float | None = None
    paused_until: float = 0.0
    decreases: int = 0
    # Measuring the unloaded latency: answers to requests sent after _measure_after count.
    measuring: bool = True
    _measure_after: int = 0
    _measured_at: float | None = None
    _unloaded: list[float] = field(default_factory=list)
    _round: list[float] = field(default_factory=list)
    # Requests sent up to this sequence number were sent before the last decrease.
    _sent: int = 0
    _decreased_at_sent: int = -1

    def allowed(self, now: float) -> int:
        """How many requests may be in flight now (0 while paused by Retry-After or a back-off).

        One while the unloaded latency is measured, which starts again here every ``baseline_interval_s``.
        """
        if now < self.paused_until:
            return 0
        if self.measuring:
            return 1
        if self._measured_at is None:
            self._measured_at = now  # the interval runs from the first request after a measurement
        elif self.settings.baseline_interval_s and now - self._measured_at >= self.settings.baseline_interval_s:
            self.measuring, self._measure_after = True, self._sent
            self._unloaded.clear()
            self._round.clear()
            return 1
        return max(1, int(self.limit))

    @property
    def concurrency(self) -> int:
        """The limit as it stands, for display (no clock: reading it changes nothing)."""
        return 1 if self.measuring else max(1, int(self.limit))

    def sent(self) -> int:
        """Record that one request was sent; returns its sequence number (pass it back with its answer)."""
        self._sent += 1
        return self._sent

    def on_answer(self, sequence: int, latency_s: float) -> None:
        """A request answered in time: learn the baseline, then grow, or shrink on a slow round."""
        if self.measuring:
            if sequence > self._measure_after:  # sent one at a time, after the earlier ones finished
                self._unloaded.append(latency_s)
                if len(self._unloaded) >= self.settings.baseline_samples:
                    self.baseline_s = statistics.median(self._unloaded)
                    self.measuring, self._measured_at = False, None
            return
        if self.baseline_s is None or sequence <= self._decreased_at_sent:
            return  # sent before the last decrease: says nothing about the current limit
        self._round.append(latency_s)
        if len(self._round) >= max(self.settings.baseline_samples, int(self.limit)):
            median = statistics.median(self._round)
            self._round.clear()
            self.baseline_s = min(self.baseline_s, median)
            if median > self.settings.latency_tolerance * self.baseline_s:
                self._decrease(sequence)
                return
        if self.limit < self.settings.max_concurrency:
            self.limit = min(float(self.settings.max_concurrency), self.limit + 1.0 / self.limit)

    def on_overload(self, sequence: int, now: float, retry_after_s: float | None) -> None:
        """A 429/503: pause for Retry-After (or the default back-off) and shrink the limit."""
        pause = retry_after_s if retry_after_s is not None else self.settings.default_backoff_s
        self.paused_until = max(self.paused_until, now + pause)
        self._decrease(sequence)

    def _decrease(self, sequence: int) -> None:
        if sequence <= self._decreased_at_sent:
            return  # sent before the last decrease: already acted on
        self.limit = max(1.0, self.limit * self.settings.decrease_factor)
        self._decreased_at_sent = self._sent
        self._round.clear()
        self.decreases += 1
