"""The knobs of the rollout loop (the analysis has its own, in ``AnalysisConfig``)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class RolloutSettings(BaseModel):
    """How often to look, how long to dwell, what to do when undecided, failing, or changed by someone else."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    interval_s: float = Field(default=30.0, gt=0, description="Seconds between analysis ticks.")
    warmup_s: float = Field(default=60.0, ge=0, description="Seconds ignored after each weight change.")
    step_min_duration_s: float = Field(default=300.0, ge=0, description="Least time on a step before stepping on.")
    undecided_budget_s: float = Field(
        default=2700.0, gt=0, description="How long a step may stay INCONCLUSIVE or HOLD before the policy applies."
    )
    undecided_policy: Literal["pause", "rollback"] = Field(
        default="pause", description="Past the budget: pause for a person, or roll back. Never promote."
    )
    failure_limit: int = Field(default=0, ge=0, description="FAIL ticks tolerated per rollout; one more rolls back.")
    foreign_change_policy: Literal["pause", "rollback"] = Field(
        default="pause", description="When someone else changes the canary percent or the spec."
    )
    lease_duration_s: float = Field(
        default=120.0, gt=0, description="How long the driver's lease lasts without renewal (renewed each tick)."
    )
    shadow_sink_url: str = Field(default="", description="The replay sink KServe's logger posts to (shadow stage).")
    evidence_window: Literal["rollout", "step"] = Field(
        default="step",
        description="Judge from when the canary first got traffic (rollout) or from the current step's start.",
    )
