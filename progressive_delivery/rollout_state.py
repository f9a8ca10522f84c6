"""A rollout's state as persisted on the InferenceService: plan, stage, lease, what it wrote, decisions.

The state lives in one JSON annotation (``live_service.STATE_ANNOTATION``) so it survives the process or
pod that drives the rollout: a new process reads it and continues where the last one stopped. The
annotation is capped (the API server refuses more than 256 KiB of annotations), so only the newest
decisions are kept there; the full audit goes into the report artifact.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from serving_core.errors import InvalidInputError

SHADOW_STAGE = "shadow"
# Decisions and weight points kept in the annotation; older ones are dropped (the report keeps them all).
MAX_KEPT_DECISIONS = 120
MAX_KEPT_WEIGHTS = 120
DEFAULT_STEPS = (5, 10, 25, 50)


class Phase(StrEnum):
    """Where a rollout is: only ``running`` acts; the other phases wait for a person or are final."""

    RUNNING = "running"
    PAUSED = "paused"
    PROMOTED = "promoted"
    ROLLED_BACK = "rolled-back"
    FAILED = "failed"

    @property
    def final(self) -> bool:
        """Promoted, rolled back or failed: nothing more will happen."""
        return self in (Phase.PROMOTED, Phase.ROLLED_BACK, Phase.FAILED)


class Action(StrEnum):
    """A write to the InferenceService that the rollout has decided and may not have finished."""

    SET_PERCENT = "set-percent"
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    SHADOW_ON = "shadow-on"
    SHADOW_OFF = "shadow-off"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RolloutPlan(_Model):
    """The stages: an optional shadow stage (no user traffic), then canary weights, then promotion."""

    steps: tuple[int, ...] = DEFAULT_STEPS
    shadow: bool = False

    @field_validator("steps")
    @classmethod
    def _rising_percents(cls, steps: tuple[int, ...]) -> tuple[int, ...]:
        if not steps:
            raise ValueError("give at least one canary step, for example 5,10,25,50")
        if any(not 0 < step < 100 for step in steps):
            raise ValueError(f"every step must be a percent from 1 to 99, got {list(steps)}")
        if list(steps) != sorted(set(steps)):
            raise ValueError(f"steps must rise, each once, got {list(steps)}")
        return steps

    @property
    def stages(self) -> tuple[str, ...]:
        """Stage names in order: ``shadow`` (when enabled) then each step's percent."""
        return ((SHADOW_STAGE,) if self.shadow else ()) + tuple(str(step) for step in self.steps)

    def percent_of(self, stage_index: int) -> int:
        """The canary percent during stage ``stage_index`` (0 in the shadow stage)."""
        stage = self.stages[stage_index]
        return 0 if stage == SHADOW_STAGE else int(stage)


def parse_steps(text: str) -> tuple[int, ...]:
    """``"5,10,25,50"`` as a validated tuple of percents.

    Raises:
        InvalidInputError: not comma-separated integers from 1 to 99 that rise.
    """
    try:
        steps = tuple(int(part) for part in text.split(",") if part.strip())
        return RolloutPlan(steps=steps).steps
    except (ValueError, ValidationError) as error:
        raise InvalidInputError(
            f"canary steps {text!r} are not usable: {error}", hint="give rising percents, for example 5,10,25,50"
        ) from error


class Lease(_Model):
    """Who drives the rollout now; another driver must not act until ``renewed_at + duration_s`` has passed."""

    holder: str
    renewed_at: float
    duration_s: float

    def live(self, now: float) -> bool:
        """Whether the holder still owns the rollout at ``now``."""
        return now < self.renewed_at + self.duration_s


class Written(_Model):
    """What the rollout last wrote, so a different live value means someone else changed the service."""

    canary_percent: int | None
    generation: int
    shadow_logger_url: str | None = None


class Decision(_Model):
    """One analysis tick and what the rollout did about it."""

    at: float
    stage: str
    outcome: str
    action: str
    reasons: tuple[str, ...] = ()
    # Per-arm counts {"stable": {"requests": n, "errors": x, "slow": y}, "canary": {...}}, for the plot.
    counts: dict[str, dict[str, float]] = Field(default_factory=dict)


class WeightPoint(_Model):
    """The canary percent from ``at`` on."""

    at: float
    percent: int


class RolloutState(_Model):
    """Everything a driver needs to continue a rollout, as stored on the InferenceService."""

    run_id: str
    name: str
    namespace: str
    mode: str
    plan: RolloutPlan
    phase: Phase = Phase.RUNNING
    stage_index: int = 0
    stage_started_at: float
    # When the current run of INCONCLUSIVE / HOLD ticks began; None after a conclusive tick.
    undecided_since: float | None = None
    fail_count: int = 0
    # When the canary first got user traffic in this rollout (the start of a rollout-wide evidence window).
    canary_traffic_since: float | None = None
    message: str = ""
    lease: Lease | None = None
    written: Written
    pending: Action | None = None
    pending_percent: int | None = None
    dry_run: bool = False
    # How the driver reads the metrics (Prometheus URL, analysis knobs, arm selectors), so a new
    # process can continue without being told again. Opaque to the state machine.
    driver: dict[str, Any] = Field(default_factory=dict)
    started_at: float
    updated_at: float
    decisions: tuple[Decision, ...] = ()
    weights: tuple[WeightPoint, ...] = ()

    @property
    def stage(self) -> str:
        """The current stage's name."""
        return self.plan.stages[min(self.stage_index, len(self.plan.stages) - 1)]

    def to_annotation(self) -> str:
        """Compact JSON for the annotation, newest decisions and weights only."""
        kept = self.model_copy(
            update={"decisions": self.decisions[-MAX_KEPT_DECISIONS:], "weights": self.weights[-MAX_KEPT_WEIGHTS:]}
        )
        return kept.model_dump_json(exclude_none=False)

    @classmethod
    def from_annotation(cls, text: str, where: str) -> RolloutState:
        """Read the annotation back.

        Raises:
            InvalidInputError: it is not a rollout state this version understands.
        """
        try:
            return cls.model_validate_json(text)
        except ValidationError as error:
            raise InvalidInputError(
                f"the rollout state annotation on {where} cannot be read: {error.errors()[0]['msg']}",
                hint="abort the rollout (aiserving rollout abort NAME) or remove the annotation by hand",
            ) from error

    def evolve(self, **changes: Any) -> RolloutState:
        """A copy with ``changes`` (validated)."""
        return RolloutState.model_validate({**self.model_dump(), **changes})
