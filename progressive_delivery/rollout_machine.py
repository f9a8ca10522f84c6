"""The rollout state machine: shadow → canary steps → promote, driven by analysis outcomes, crash-safe.

Every tick reads the live InferenceService, loads the state from its annotation, and then:

1. does nothing unless the phase is ``running`` (a person paused it, or it is finished);
2. refuses to act while another driver's lease is live;
3. finishes a write that a dead driver had decided but maybe not made (``pending``);
4. pauses (or rolls back) when the canary percent or the spec is not what the rollout wrote last:
   someone else changed it, and the rollout never fights a person;
5. asks the judge and moves: PASS after the step's minimum dwell → next stage (or promote after the
   last); FAIL → count it, past ``failure_limit`` (at once in the shadow stage) → roll back;
   INCONCLUSIVE or HOLD (missing data) → wait, and past the undecided budget apply the policy
   (pause or roll back; never promote).

Each write to the service is recorded as ``pending`` before it is made, so a driver killed between the
two leaves a state the next driver completes instead of mistaking the half-done write for a person's.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from progressive_delivery.live_service import LiveService
from progressive_delivery.rollout_settings import RolloutSettings
from progressive_delivery.rollout_state import (
    SHADOW_STAGE,
    Action,
    Decision,
    Lease,
    Phase,
    RolloutPlan,
    RolloutState,
    WeightPoint,
    Written,
)
from progressive_delivery.traffic_control import Judge, Judgement, TrafficControl
from serving_core.errors import ConflictError, InvalidInputError

log = logging.getLogger(__name__)

Clock = Callable[[], float]
# A person's command re-reads and tries again this often when the driver writes at the same moment.
COMMAND_ATTEMPTS = 5


class StateChanged(Exception):
    """The state annotation changed under this driver (a person paused or aborted): theirs wins."""

    def __init__(self, state: RolloutState) -> None:
        """Carry the state found on the service."""
        super().__init__(f"rollout state changed to {state.phase}")
        self.state = state


def default_holder(run_id: str) -> str:
    """A lease holder naming the run and this process, so two drivers of one run are told apart."""
    return f"{run_id}/{socket.gethostname()}/{os.getpid()}"


@dataclass
class RolloutMachine:
    """Drives one rollout over ``control`` with outcomes from ``judge``; ``holder`` names this driver."""

    control: TrafficControl
    judge: Judge
    settings: RolloutSettings
    holder: str
    clock: Clock
    dry_run: bool = False
    # A dry run writes nothing to the service, so it keeps its state here.
    _dry_state: RolloutState | None = field(default=None, init=False, repr=False)
    # The service as last read or written: the resourceVersion the next state write is conditional on.
    _last_live: LiveService | None = field(default=None, init=False, repr=False)

    # -- commands ------------------------------------------------------------------------------------------

    def start(self, run_id: str, plan: RolloutPlan, driver: dict[str, Any] | None = None) -> RolloutState:
        """Begin a rollout of the canary now configured on the service, or continue one this run began.

        Raises:
            InvalidInputError: no canary is configured on the service.
            ConflictError: another rollout is in progress on the service.
        """
        return self._settled(lambda: self._start(run_id, plan, driver or {}), attempts=1)

    def pause(self, reason: str) -> RolloutState:
        """A person stops the rollout where it is; the traffic stays as it is."""
        return self._settled(lambda: self._pause(reason), attempts=COMMAND_ATTEMPTS)

    def resume(self, *, force: bool = False) -> RolloutState:
        """Continue a paused rollout, or one whose driver died, accepting the service as it is now.

        The current stage starts over (its analysis window restarts) with the stage's percent written again.

        Raises:
            InvalidInputError: the rollout is finished.
            ConflictError: another driver's lease is live (without ``force``).
        """
        return self._settled(lambda: self._resume(force), attempts=1)

    def abort(self, reason: str) -> RolloutState:
        """A person ends the rollout: stable gets all traffic."""
        return self._settled(lambda: self._abort(reason), attempts=COMMAND_ATTEMPTS)

    def roll_back_if_started_by(self, run_id: str, why: str) -> RolloutState | None:
        """The exit handler's part: roll back an unfinished rollout that run ``run_id`` started; else nothing."""
        live = self._read()
        if not live.state_annotation:
            return None
        state = RolloutState.from_annotation(live.state_annotation, f"{live.namespace}/{live.name}")
        if state.run_id != run_id or state.phase.final:
            return None
        return self.abort(why)

    def run(self, sleep: Callable[[float], None], max_ticks: int | None = None) -> RolloutState:
        """Tick every ``interval_s`` until the rollout stops running (or ``max_ticks`` ticks)."""
        ticks = 0
        state = self.tick()
        while state.phase is Phase.RUNNING and (max_ticks is None or ticks < max_ticks):
            sleep(self.settings.interval_s)
            state = self.tick()
            ticks += 1
        return state

    def tick(self) -> RolloutState:
        """Read, check, judge and move once (see the module docstring).

        Raises:
            ConflictError: another driver holds a live lease.
        """
        return self._settled(self._tick, attempts=1)

    @staticmethod
    def _settled(step: Callable[[], RolloutState], attempts: int) -> RolloutState:
        """Run ``step``; when the state changed under it, try again (a person's command) or take the new state."""
        for attempt in range(1, attempts + 1):
            try:
                return step()
            except StateChanged as changed:
                if attempt == attempts:
                    return changed.state
        raise AssertionError("attempts must be at least 1")

    def _start(self, run_id: str, plan: RolloutPlan, driver: dict[str, Any]) -> RolloutState:
        live = self._read()
        where = f"{live.namespace}/{live.name}"
        if live.state_annotation and not self.dry_run:
            existing = RolloutState.from_annotation(live.state_annotation, where)
            if not existing.phase.final:
                if existing.run_id != run_id:
                    raise ConflictError(
                        f"InferenceService {where} already has a {existing.phase} rollout started by run "
                        f"{existing.run_id!r} (stage {existing.stage})",
                        hint=f"aiserving rollout resume {live.name} continues it; "
                        f"aiserving rollout abort {live.name} rolls it back",
                    )
                log.info("continuing rollout %s of %s at stage %s", run_id, where, existing.stage)
                return self._take_over(existing, force=False)
        if live.canary_percent is None:
            raise InvalidInputError(
                f"InferenceService {where} has no canary to roll out",
                hint="deploy the new model as a canary first (aiserving deploy CONFIG with canary_percent 0 or "
                "more); the rollout then steps its traffic",
            )
        now = self.clock()
        state = RolloutState(
            run_id=run_id, name=live.name, namespace=live.namespace, mode=live.mode.value, plan=plan,
            stage_index=0, stage_started_at=now, started_at=now, updated_at=now, dry_run=self.dry_run,
            written=Written(canary_percent=live.canary_percent, generation=live.generation,
                            shadow_logger_url=live.shadow_logger_url),
            lease=self._lease(now), message="started", driver=driver,
            weights=(WeightPoint(at=now, percent=live.canary_percent),),
        )  # fmt: skip
        state = self._save(state)
        return self._enter_stage(state, 0, now)

    def _take_over(self, state: RolloutState, *, force: bool) -> RolloutState:
        """Become the driver of a running rollout whose driver died (its lease ran out), or any with ``force``."""
        now = self.clock()
        self._check_lease(state, now, force=force)
        state = self._save(state.evolve(lease=self._lease(now), updated_at=now))
        return self._finish_pending(state) if state.pending else state

    def _pause(self, reason: str) -> RolloutState:
        state = self._require_state(self._read())
        if state.phase.final:
            return state
        now = self.clock()
        return self._save(state.evolve(phase=Phase.PAUSED, message=reason, lease=None, updated_at=now))

    def _resume(self, force: bool) -> RolloutState:
        live = self._read()
        state = self._require_state(live)
        where = f"{live.namespace}/{live.name}"
        if state.phase.final:
            raise InvalidInputError(
                f"the rollout on {where} is {state.phase}; there is nothing to resume",
                hint="start a new rollout with aiserving rollout start CONFIG",
            )
        if state.phase is Phase.RUNNING:
            state = self._take_over(state, force=force)
            live = self._read()
        now = self.clock()
        state = state.evolve(
            phase=Phase.RUNNING, message="resumed", lease=self._lease(now), undecided_since=None,
            # Someone may have changed the service while it was paused: evidence starts again.
            canary_traffic_since=None,
            written=Written(canary_percent=live.canary_percent, generation=live.generation,
                            shadow_logger_url=live.shadow_logger_url),
            updated_at=now,
        )  # fmt: skip
        state = self._save(state)
        return self._enter_stage(state, state.stage_index, now)

    def _abort(self, reason: str) -> RolloutState:
        live = self._read()
        state = self._require_state(live)
        if state.phase.final:
            return state
        return self._roll_back(state.evolve(lease=self._lease(self.clock())), live, reason)

    # -- one tick ------------------------------------------------------------------------------------------

    def _tick(self) -> RolloutState:
        live = self._read()
        state = self._require_state(live)
        if state.phase is not Phase.RUNNING:
            return state
        now = self.clock()
        self._check_lease(state, now, force=False)
        if state.pending:
            return self._finish_pending(state)
        change = self._foreign_change(state, live)
        if change:
            return self._on_foreign_change(state, live, change)
        state = state.evolve(lease=self._lease(now), updated_at=now)
        window_start = state.stage_started_at + self.settings.warmup_s
        if now < window_start:
            return self._save(state)
        if self.settings.evidence_window == "rollout" and state.stage != SHADOW_STAGE and state.canary_traffic_since:
            # Evidence carries across steps: both arms are compared on counts, whatever the weight was.
            window_start = min(window_start, state.canary_traffic_since + self.settings.warmup_s)
        if live.canary_ready:
            judgement = self.judge.judge(state.stage, window_start, now)
        else:
            judgement = Judgement("HOLD", ("the canary is not ready",))
        return self._decide(state, live, judgement, now)

    def _decide(self, state: RolloutState, live: LiveService, judgement: Judgement, now: float) -> RolloutState:
        outcome = str(judgement.outcome).upper()
        if outcome == "FAIL":
            fail_count = state.fail_count + 1
            state = state.evolve(fail_count=fail_count, undecided_since=None)
            if state.stage == SHADOW_STAGE or fail_count > self.settings.failure_limit:
                state = self._record(state, judgement, outcome, "rollback", now)
                return self._roll_back(state, live, f"stage {state.stage} failed: {_reasons(judgement)}")
            return self._save(self._record(state, judgement, outcome, "hold", now))
        if outcome == "PASS":
            state = state.evolve(undecided_since=None)
            if now - state.stage_started_at < self.settings.step_min_duration_s:
                return self._save(self._record(state, judgement, outcome, "dwell", now))
            last = state.stage_index + 1 >= len(state.plan.stages)
            state = self._record(state, judgement, outcome, "promote" if last else "step", now)
            if last:
                return self._promote(state, live)
            return self._enter_stage(state, state.stage_index + 1, now, live)
        since = state.undecided_since if state.undecided_since is not None else now
        state = state.evolve(undecided_since=since)
        if now - since < self.settings.undecided_budget_s:
            return self._save(self._record(state, judgement, outcome, "wait", now))
        why = (
            f"stage {state.stage} stayed {outcome} for {now - since:.0f}s, past the "
            f"{self.settings.undecided_budget_s:.0f}s budget: {_reasons(judgement)}"
        )
        if self.settings.undecided_policy == "rollback":
            return self._roll_back(self._record(state, judgement, outcome, "rollback", now), live, why)
        state = self._record(state, judgement, outcome, "pause", now)
        return self._save(state.evolve(phase=Phase.PAUSED, message=why, lease=None))

    # -- transitions -----------------------------------------------------------------------------------------

    def _enter_stage(
        self, state: RolloutState, index: int, now: float, live: LiveService | None = None
    ) -> RolloutState:
        live = live or self._read()
        stage = state.plan.stages[index]
        percent = state.plan.percent_of(index)
        if stage != SHADOW_STAGE:
            refusal = self.judge.refuse_step(percent)
            if refusal:
                message = f"paused before stage {stage}: {refusal}"
                return self._save(state.evolve(phase=Phase.PAUSED, message=message, lease=None))
        state = state.evolve(stage_index=index, stage_started_at=now, undecided_since=None, message=f"stage {stage}")
        want_logger = self.settings.shadow_sink_url if stage == SHADOW_STAGE else None
        if (live.shadow_logger_url or None) != (want_logger or None):
            state = self._act(state, Action.SHADOW_ON if want_logger else Action.SHADOW_OFF, None)
        if live.canary_percent != percent:
            state = self._act(state, Action.SET_PERCENT, percent)
        if percent > 0 and state.canary_traffic_since is None:
            state = state.evolve(canary_traffic_since=now)
        return self._save(state)

    def _promote(self, state: RolloutState, live: LiveService) -> RolloutState:
        if live.shadow_logger_url:
            state = self._act(state, Action.SHADOW_OFF, None)
        state = self._act(state, Action.PROMOTE, None)
        final = state.evolve(phase=Phase.PROMOTED, message="promoted: the canary serves 100%", lease=None)
        return self._save(final)

    def _roll_back(self, state: RolloutState, live: LiveService, why: str) -> RolloutState:
        log.warning("rolling back %s/%s: %s", state.namespace, state.name, why)
        state = self._act(state, Action.ROLLBACK, None)
        if live.shadow_logger_url:
            state = self._act(state, Action.SHADOW_OFF, None)
        final = state.evolve(phase=Phase.ROLLED_BACK, message=f"rolled back: {why}", lease=None)
        return self._save(final)

    def _on_foreign_change(self, state: RolloutState, live: LiveService, change: str) -> RolloutState:
        if self.settings.foreign_change_policy == "rollback":
            return self._roll_back(state, live, change)
        message = (
            f"paused: {change}. The rollout does not fight other writers; "
            f"aiserving rollout resume {state.name} continues from the service as it is now, "
            f"aiserving rollout abort {state.name} rolls back"
        )
        return self._save(state.evolve(phase=Phase.PAUSED, message=message, lease=None))

    # -- writes ----------------------------------------------------------------------------------------------

    def _act(self, state: RolloutState, action: Action, percent: int | None) -> RolloutState:
        """Record the write as pending, make it, then record what it left on the service."""
        if self.dry_run:
            log.info("dry run: would %s %s", action.value, "" if percent is None else f"{percent}%")
            return self._after_write(state, action, percent, None)
        state = self._save(state.evolve(pending=action, pending_percent=percent))
        written = self._apply(action, percent)
        return self._after_write(state, action, percent, written)

    def _apply(self, action: Action, percent: int | None) -> LiveService:
        if action is Action.SET_PERCENT:
            assert percent is not None
            return self.control.set_canary_percent(percent)
        if action is Action.PROMOTE:
            return self.control.promote()
        if action is Action.ROLLBACK:
            return self.control.rollback()
        if action is Action.SHADOW_ON:
            return self.control.set_shadow_logger(self.settings.shadow_sink_url)
        return self.control.set_shadow_logger(None)

    def _after_write(
        self, state: RolloutState, action: Action, percent: int | None, live: LiveService | None
    ) -> RolloutState:
        now = self.clock()
        weights = state.weights
        shown = {Action.SET_PERCENT: percent, Action.PROMOTE: 100, Action.ROLLBACK: 0}.get(action)
        if shown is not None:
            weights = (*weights, WeightPoint(at=now, percent=shown))
        if live is None:
            # A dry run changed nothing, so the service must still look as it did.
            written = state.written
        else:
            self._last_live = live
            written = Written(
                canary_percent=live.canary_percent, generation=live.generation,
                shadow_logger_url=live.shadow_logger_url,
            )  # fmt: skip
        return state.evolve(pending=None, pending_percent=None, written=written, weights=weights, updated_at=now)

    def _finish_pending(self, state: RolloutState) -> RolloutState:
        """Make the write a dead driver recorded as pending (each one is idempotent)."""
        assert state.pending is not None
        log.info("finishing the %s a previous driver left pending", state.pending.value)
        action, percent = state.pending, state.pending_percent
        written = self._apply(action, percent)
        state = self._after_write(state, action, percent, written)
        if action is Action.PROMOTE:
            state = state.evolve(phase=Phase.PROMOTED, message="promoted: the canary serves 100%", lease=None)
        elif action is Action.ROLLBACK:
            state = state.evolve(phase=Phase.ROLLED_BACK, lease=None)
        return self._save(state)

    def _save(self, state: RolloutState) -> RolloutState:
        """Write the state annotation, conditional on the service being as this driver last saw it.

        The controller's status writes also move the resourceVersion: when the stored state is still the
        one this driver last saw, the write is simply sent again over the fresh read.
        """
        if self.dry_run:
            self._dry_state = state
            return state
        assert self._last_live is not None, "the service is read before any state is saved"
        for _ in range(COMMAND_ATTEMPTS):
            seen = self._last_live
            try:
                self._last_live = self.control.write_state(state.to_annotation(), seen.resource_version)
                return state
            except ConflictError as error:
                fresh = self._read()
                if fresh.state_annotation != seen.state_annotation:
                    # Someone else wrote the state (a person pausing or aborting): theirs wins.
                    log.warning("the rollout state of %s/%s changed under this driver; re-reading",
                                state.namespace, state.name)  # fmt: skip
                    raise StateChanged(self._require_state(fresh)) from error
        raise ConflictError(
            f"the rollout state of {state.namespace}/{state.name} could not be written: the service kept changing",
            hint="check what else writes the InferenceService",
        )

    # -- reading -----------------------------------------------------------------------------------------------

    def _read(self) -> LiveService:
        self._last_live = self.control.read()
        return self._last_live

    def _require_state(self, live: LiveService) -> RolloutState:
        self._last_live = live
        if self.dry_run and self._dry_state is not None:
            return self._dry_state
        if not live.state_annotation:
            raise InvalidInputError(
                f"InferenceService {live.namespace}/{live.name} has no rollout",
                hint="start one with aiserving rollout start CONFIG",
            )
        return RolloutState.from_annotation(live.state_annotation, f"{live.namespace}/{live.name}")

    def _check_lease(self, state: RolloutState, now: float, *, force: bool) -> None:
        lease = state.lease
        if force or lease is None or lease.holder == self.holder or not lease.live(now):
            return
        raise ConflictError(
            f"the rollout on {state.namespace}/{state.name} is driven by {lease.holder} "
            f"(lease renewed {now - lease.renewed_at:.0f}s ago, lasts {lease.duration_s:.0f}s)",
            hint="wait for that driver to stop, or pass --force if it is known to be dead",
        )

    def _lease(self, now: float) -> Lease:
        return Lease(holder=self.holder, renewed_at=now, duration_s=self.settings.lease_duration_s)

    @staticmethod
    def _foreign_change(state: RolloutState, live: LiveService) -> str:
        written = state.written
        if live.canary_percent != written.canary_percent:
            return (
                f"the canary percent is {_percent(live.canary_percent)} but the rollout wrote "
                f"{_percent(written.canary_percent)}: someone else changed it"
            )
        if live.generation != written.generation:
            return (
                f"the spec changed (generation {written.generation} → {live.generation}) "
                "and the rollout did not change it: someone else edited the InferenceService"
            )
        return ""

    def _record(self, state: RolloutState, judgement: Judgement, outcome: str, action: str, now: float) -> RolloutState:
        decision = Decision(
            at=now, stage=state.stage, outcome=outcome, action=action, reasons=judgement.reasons,
            counts=judgement.counts,
        )  # fmt: skip
        log.info("%s/%s stage %s: %s → %s (%s)", state.namespace, state.name, state.stage, outcome, action,
                 _reasons(judgement))  # fmt: skip
        return state.evolve(decisions=(*state.decisions, decision))


def _reasons(judgement: Judgement) -> str:
    return "; ".join(judgement.reasons) or "no reason given"


def _percent(value: int | None) -> str:
    return "unset" if value is None else f"{value}%"
