"""The two things a rollout drives or asks: the InferenceService (``TrafficControl``) and the analysis (``Judge``).

They are protocols so the state machine is pure code: the application implements ``TrafficControl`` with
the Kubernetes client and ``Judge`` with Prometheus; unit tests pass small in-memory fakes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from progressive_delivery.live_service import LiveService


class TrafficControl(Protocol):
    """Reads and writes one InferenceService; every write returns the service as written.

    Implementations raise ``ConflictError`` from ``write_state`` when ``resource_version`` is no longer
    the live one, so a state written by someone else (a person pausing the rollout) is never overwritten.
    """

    def read(self) -> LiveService:
        """The live service."""
        ...

    def write_state(self, annotation: str, resource_version: str) -> LiveService:
        """Store the rollout state annotation, only if the service is still at ``resource_version``."""
        ...

    def set_canary_percent(self, percent: int) -> LiveService:
        """Send ``percent`` of requests to the canary (``canaryTrafficPercent`` or ``spec.canary``)."""
        ...

    def promote(self) -> LiveService:
        """Make the canary the stable predictor with all traffic."""
        ...

    def rollback(self) -> LiveService:
        """Give the stable predictor all traffic and stop the canary."""
        ...

    def set_shadow_logger(self, url: str | None) -> LiveService:
        """Make KServe's payload logger post every request and response to ``url``; ``None`` removes it."""
        ...


@dataclass(frozen=True)
class Judgement:
    """One analysis tick as the state machine needs it: outcome, reasons, per-arm counts, and the full audit."""

    outcome: str  # PASS, FAIL, INCONCLUSIVE or HOLD (missing data)
    reasons: tuple[str, ...] = ()
    counts: dict[str, dict[str, float]] = field(default_factory=dict)
    audit: dict[str, Any] = field(default_factory=dict)


class Judge(Protocol):
    """Judges the canary against the stable arm over a time window, and forecasts the time to a decision."""

    def judge(self, stage: str, start: float, end: float) -> Judgement:
        """The outcome of stage ``stage`` (``shadow`` or a percent) over ``[start, end]`` (Unix seconds)."""
        ...

    def refuse_step(self, percent: int) -> str | None:
        """Why stepping to ``percent`` cannot reach a decision within the budget, or None when it can."""
        ...
