"""How many requests to keep in flight: a delay-based limit that settles at the latency the job may cause.

A fixed step up and a halving on slow answers (AIMD) never settles: it climbs past the point where the
predictor's latency reaches the tolerance, halves, and averages well below that point. This controller
estimates where that point is and moves towards it in steps proportional to the distance, as TCP Vegas
and Netflix's concurrency-limits (Gradient2) do from a no-load and a current round-trip time:

1. **Unloaded latency.** The first ``baseline_samples`` requests go one at a time; every
   ``baseline_interval_s`` the requests in flight finish and a few go one at a time again (the limit it had
   is back right after). The samples of the last ``baseline_history`` measurements are pooled: the unloaded
   latency moves with the predictor's host, and one measurement that met a stall must not set the target.
2. **Loaded latency.** Every answer in time goes into a sliding window of the latest
   ``max(window, 2 x limit)`` answers.
3. **Target.** ``latency_tolerance`` x the unloaded ``latency_quantile`` (p90): the job may make the
   predictor's tail that much slower, no more. Tail against tail, because the unloaded tail on a shared
   node is mostly noise that load does not add to, while queueing moves the whole distribution.
4. **Start.** While the loaded latency stays within ``start_margin`` (1.25) x the unloaded latency, the
   predictor is not queueing requests yet, and the limit is multiplied by ``start_step`` (2) each round,
   as TCP's slow start does (its HyStart variant ends the start on the same signal, a rise in delay). The
   first round past the margin, or a 429/503, ends the start for good. A predictor that needs 32 requests
   in flight is reached in 5 rounds instead of 16 steps of ``max_step``.
5. **Step.** Once per round (``max(baseline_samples, limit)`` answers) the limit is multiplied by
   ``(target / loaded quantile) ** gain``, kept within ``[1 / max_step, max_step]``: near the target the
   steps are small, so the limit settles instead of oscillating; under it the limit grows by up to
   ``max_step`` a round; over it it shrinks by at most that much a round, in proportion to the excess. It
   grows only when the round filled the limit (a client that cannot fill it learns nothing about more).
6. **Knee.** More requests in flight pay only while the predictor has room to work on them at once: on a
   predictor that serves one request at a time, two in flight double the latency and add no throughput.
   When the limit rises to a higher whole level, the answers to requests sent after the rise (at least
   ``baseline_samples``, or one per request in flight) give the throughput there (Little's law: the level
   over their median latency), set against the level below; a rise that brought less than ``knee_share`` of
   its proportional gain (from 4 to 5 in flight, at least 12.5 % more) is undone, and the limit holds at the
   level below for ``probe_interval_s``, then may rise again to look for new room (more replicas, other load
   gone). A rise that keeps the latency quantile within ``start_margin`` of the unloaded one is never undone
   (no queueing yet, and two short spans on a noisy node differ by chance); past it the limit rises one whole
   level at a time, each judged before the next. The tolerance stays the ceiling (a batching predictor, whose
   throughput grows with its latency, still goes up to it); the knee keeps the job below it wherever more
   requests would only queue.
7. **Overload.** A 429/503 multiplies the limit by ``overload_factor`` at once, at most once per round
   (answers to requests sent before a back-off say nothing about the new limit), and pauses new requests
   for ``Retry-After`` (or ``default_backoff_s``).

The controller is pure: the client feeds it requests, answers and the clock.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

from serving_core.errors import InvalidInputError


@dataclass(frozen=True)
class ConcurrencySettings:
    """The knobs of the adaptive concurrency (users set the first two; the rest are tuning).

    Attributes:
        max_concurrency: never more requests in flight than this.
        latency_tolerance: the job may make the predictor's tail latency up to this multiple of its
            unloaded tail latency.
        latency_quantile: the quantile compared as "tail" (0.9: stable over tens of answers).
        overload_factor: the limit is multiplied by this on a 429/503.
        baseline_samples: unloaded requests per measurement (one at a time); also the fewest answers in a
            round.
        baseline_history: measurements whose samples are pooled for the unloaded latency.
        baseline_interval_s: seconds between measurements of the unloaded latency (0: only the first).
        default_backoff_s: the pause after a 429/503 without Retry-After.
        window: the fewest latest answers the loaded latency is taken over.
        gain: the share (in log scale) of the distance to the target covered per round.
        max_step: the most the limit grows (or, from latency, shrinks) per round, as a factor.
        start_step: the factor the limit grows by per round at the start (1: no start phase, only
            ``max_step`` steps).
        start_margin: the start goes on while the loaded latency quantile is within this multiple of the
            unloaded one (requests are not queueing yet).
        knee_share: a rise to a higher level is kept only if the throughput grew by this share of the rise.
        probe_interval_s: seconds a limit held below a rise that did not pay stays held before it may rise
            again.
    """

    max_concurrency: int = 64
    latency_tolerance: float = 2.0
    latency_quantile: float = 0.9
    overload_factor: float = 0.5
    baseline_samples: int = 8
    baseline_history: int = 4
    baseline_interval_s: float = 5.0
    default_backoff_s: float = 0.2
    window: int = 32
    gain: float = 0.5
    max_step: float = 1.25
    start_step: float = 2.0
    start_margin: float = 1.25
    knee_share: float = 0.5
    probe_interval_s: float = 20.0

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
        if not 0.0 < self.latency_quantile < 1.0:
            raise InvalidInputError(f"latency quantile {self.latency_quantile:g} is not in (0, 1)", hint="use 0.9")
        if not 0.0 < self.overload_factor < 1.0:
            raise InvalidInputError(f"overload factor {self.overload_factor:g} is not in (0, 1)", hint="use 0.5")
        if self.baseline_samples < 1 or self.baseline_history < 1 or self.window < 1:
            raise InvalidInputError(
                f"baseline samples {self.baseline_samples}, baseline history {self.baseline_history} or window "
                f"{self.window} is below 1",
                hint="use 8, 4 and 32",
            )
        if self.baseline_interval_s < 0:
            raise InvalidInputError(
                f"baseline interval {self.baseline_interval_s:g} s is negative", hint="use 5, or 0 to measure once"
            )
        if not 0.0 < self.gain <= 1.0 or self.max_step <= 1.0:
            raise InvalidInputError(
                f"gain {self.gain:g} is not in (0, 1] or max step {self.max_step:g} is not above 1",
                hint="use a gain of 0.5 and a max step of 1.25",
            )
        if self.start_step < 1.0 or self.start_margin < 1.0:
            raise InvalidInputError(
                f"start step {self.start_step:g} or start margin {self.start_margin:g} is below 1",
                hint="use a start step of 2 (1: no start phase) and a start margin of 1.25",
            )
        if not 0.0 <= self.knee_share < 1.0 or self.probe_interval_s <= 0:
            raise InvalidInputError(
                f"knee share {self.knee_share:g} is not in [0, 1) or probe interval {self.probe_interval_s:g} s is "
                "not above 0",
                hint="use a knee share of 0.5 (0: rises are never undone) and a probe interval of 20 s",
            )


def quantile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values``, interpolated between the nearest ranks."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class ConcurrencyController:
    """The current concurrency limit and the evidence it is based on."""

    settings: ConcurrencySettings
    limit: float = 1.0
    paused_until: float = 0.0
    decreases: int = 0  # back-offs on 429/503
    starting: bool = True  # in the start phase: growing by start_step a round
    # Measuring the unloaded latency: answers to requests sent after _measure_after count.
    measuring: bool = True
    _measure_after: int = 0
    _measured_at: float | None = None
    _probe: list[float] = field(default_factory=list)
    _unloaded: deque[list[float]] = field(default_factory=deque)
    _loaded: deque[float] = field(default_factory=deque)
    _round_answers: int = 0
    _round_busiest: int = 0  # most requests in flight at a send since the last step
    # Latencies of answers to requests sent at the current whole level (since it began), and, after a rise
    # not judged yet, the level it rose from with that level's latencies.
    _at_level: list[float] = field(default_factory=list)
    _level_began_at_sent: int = 0
    _below: tuple[int, list[float]] | None = None
    # The level held after a rise that did not pay, and when the hold began (set at the next ``allowed``).
    ceiling: int | None = None
    _held_at: float | None = None
    # Requests sent up to this sequence number were sent before the last back-off.
    _sent: int = 0
    _decreased_at_sent: int = -1

    @property
    def unloaded_s(self) -> float | None:
        """The unloaded latency quantile the target is a multiple of (``None`` before the first measurement)."""
        if not self._unloaded:
            return None
        pooled = [sample for measurement in self._unloaded for sample in measurement]
        return quantile(pooled, self.settings.latency_quantile)

    @property
    def target_s(self) -> float | None:
        """The loaded latency quantile the limit is steered to."""
        unloaded = self.unloaded_s
        return None if unloaded is None else self.settings.latency_tolerance * unloaded

    def allowed(self, now: float) -> int:
        """How many requests may be in flight now (0 while paused by Retry-After or a back-off).

        One while the unloaded latency is measured, which starts again here every ``baseline_interval_s``.
        """
        if now < self.paused_until:
            return 0
        if self.measuring:
            return 1
        if self.ceiling is not None:
            if self._held_at is None:
                self._held_at = now
            elif now - self._held_at >= self.settings.probe_interval_s:
                self.ceiling, self._held_at = None, None  # look for room again
        if self._measured_at is None:
            self._measured_at = now  # the interval runs from the first request after a measurement
        elif self.settings.baseline_interval_s and now - self._measured_at >= self.settings.baseline_interval_s:
            self.measuring, self._measure_after = True, self._sent
            self._probe.clear()
            return 1
        return max(1, int(self.limit))

    @property
    def concurrency(self) -> int:
        """The limit as it stands, for display (no clock: reading it changes nothing)."""
        return 1 if self.measuring else max(1, int(self.limit))

    def sent(self, in_flight: int) -> int:
        """Record a request sent with ``in_flight`` requests in flight (itself included); returns its number.

        Pass the number back with its answer.
        """
        self._sent += 1
        self._round_busiest = max(self._round_busiest, in_flight)
        return self._sent

    def on_answer(self, sequence: int, latency_s: float) -> None:
        """A request answered in time: learn the unloaded latency, then step towards the target."""
        if self.measuring:
            if sequence > self._measure_after:  # sent one at a time, after the earlier ones finished
                self._probe.append(latency_s)
                if len(self._probe) >= self.settings.baseline_samples:
                    self._unloaded.append(list(self._probe))
                    while len(self._unloaded) > self.settings.baseline_history:
                        self._unloaded.popleft()
                    self.measuring, self._measured_at = False, None
            return
        if sequence <= self._decreased_at_sent:
            return  # sent before the last back-off: says nothing about the current limit
        self._loaded.append(latency_s)
        while len(self._loaded) > max(self.settings.window, 2 * self.settings.max_concurrency):
            self._loaded.popleft()
        self._round_answers += 1
        if sequence > self._level_began_at_sent:
            self._at_level.append(latency_s)
            del self._at_level[: -max(self.settings.window, 2 * self.settings.max_concurrency)]
        if self._round_answers >= max(self.settings.baseline_samples, int(self.limit)):
            self._step()

    def on_overload(self, sequence: int, now: float, retry_after_s: float | None) -> None:
        """A 429/503: pause for Retry-After (or the default back-off) and cut the limit at once."""
        pause = retry_after_s if retry_after_s is not None else self.settings.default_backoff_s
        self.paused_until = max(self.paused_until, now + pause)
        if sequence <= self._decreased_at_sent:
            return  # sent before the last back-off: already acted on
        self.limit = max(1.0, self.limit * self.settings.overload_factor)
        self.starting = False
        self._decreased_at_sent = self._sent
        self._loaded.clear()
        self._end_round()
        self._new_level(rose_from=None)
        self.decreases += 1

    def _step(self) -> None:
        """Undo a rise that did not pay; else step towards the target, less the nearer it is."""
        unloaded, target = self.unloaded_s, self.target_s
        if unloaded is None or target is None:  # answers count only after the first measurement; never true here
            return
        level = int(self.limit)
        filled = self._round_busiest >= level
        if self._below is not None and filled and len(self._at_level) >= max(self.settings.baseline_samples, level):
            below_level, below = self._below
            self._below = None
            if self._rise_did_not_pay(below_level, below, level):
                self.limit, self.ceiling, self._held_at = float(below_level), below_level, None
                self.starting = False
                self._new_level(rose_from=None)
                self._end_round()
                return
        recent = list(self._loaded)[-max(self.settings.window, 2 * level) :]
        loaded = max(quantile(recent, self.settings.latency_quantile), 1e-9)
        ratio = target / loaded
        self.starting = (
            self.starting and self.settings.start_step > 1.0 and loaded <= self.settings.start_margin * unloaded
        )
        if self.starting:
            step = self.settings.start_step
        else:
            step = min(self.settings.max_step, max(1.0 / self.settings.max_step, ratio**self.settings.gain))
        if step > 1.0 and not filled:
            step = 1.0  # the limit was not filled: latency says nothing about more requests
        if step > 1.0 and self._below is not None and self._queueing(unloaded):
            step = 1.0  # queueing at this level: one rise at a time, each judged before the next
        ceiling = float(self.settings.max_concurrency if self.ceiling is None else self.ceiling)
        self.limit = min(ceiling, max(1.0, self.limit * step))
        if int(self.limit) != level:
            self._new_level(rose_from=level if int(self.limit) > level and filled else None)
        self._end_round()

    def _rise_did_not_pay(self, below_level: int, below: list[float], level: int) -> bool:
        """Whether a rise from ``below_level`` to ``level`` brought less than ``knee_share`` of its throughput gain.

        Throughput is the level over the median latency (Little's law, the level always in flight). A rise
        that left the latency quantile within ``start_margin`` of the unloaded one is never undone: the
        predictor is not queueing, and on a noisy node the throughput of two short spans differs by chance.
        """
        if not self._queueing(self.unloaded_s or 0.0):
            return False
        gain = (level / quantile(self._at_level, 0.5)) / (below_level / quantile(below, 0.5))
        return gain < 1.0 + self.settings.knee_share * (level / below_level - 1.0)

    def _queueing(self, unloaded: float) -> bool:
        """Whether answers at the current level (so far) are past ``start_margin`` x the unloaded quantile."""
        latencies = self._at_level or list(self._loaded)
        if not latencies:
            return False
        return quantile(latencies, self.settings.latency_quantile) > self.settings.start_margin * unloaded

    def _new_level(self, rose_from: int | None) -> None:
        """The whole level changed: answers count for it from the next request; a rise is judged later."""
        if rose_from is not None and self.settings.knee_share > 0 and self._at_level:
            self._below = (rose_from, self._at_level)
        else:
            self._below = None
        self._at_level, self._level_began_at_sent = [], self._sent

    def _end_round(self) -> None:
        self._round_answers = self._round_busiest = 0
