"""The rollout report: a Markdown page with an embedded plot, and a JSON audit of every query and decision.

The plot has three panels on one time axis (seconds since the rollout started): the canary's traffic
weight, and each arm's error and slow-request rates with 95 % credible bands (Jeffreys Beta posteriors of
the counts behind each decision). Every decision is a marker coloured by its outcome. The PNG is embedded
as a ``data:`` URI, so the page is one self-contained file the Kubeflow UI renders.
"""

from __future__ import annotations

import base64
import io
import json
import time
from pathlib import Path
from typing import Any

from progressive_delivery.rollout_state import Decision, RolloutState, WeightPoint

BAND_LEVEL = 0.95
_OUTCOME_COLOURS = {"PASS": "#38a169", "FAIL": "#e53e3e", "INCONCLUSIVE": "#d69e2e", "HOLD": "#718096"}
_ARM_COLOURS = {"stable": "#2b6cb0", "canary": "#dd6b20"}


def _rate_band(counts: dict[str, float], event: str) -> tuple[float, float, float] | None:
    from progressive_delivery.statistics import ArmCounts

    requests, events = counts.get("requests"), counts.get(event)
    if not requests or events is None:
        return None
    arm = ArmCounts(requests, events)
    low, high = arm.credible_interval(BAND_LEVEL)
    return arm.rate, low, high


def rollout_figure_png(state: RolloutState) -> bytes:
    """The three-panel plot as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    start = state.started_at
    end = max([state.updated_at, *(d.at for d in state.decisions), *(w.at for w in state.weights)], default=start)
    figure, (weight_ax, error_ax, slow_ax) = plt.subplots(3, 1, figsize=(9, 7.5), sharex=True, dpi=100)
    # The weight as a step function: the percent live at the start (the first point), then each change.
    changes = list(state.weights) or [WeightPoint(at=start, percent=state.written.canary_percent or 0)]
    times = [w.at - start for w in changes] + [end - start]
    percents = [w.percent for w in changes] + [changes[-1].percent]
    weight_ax.step(times, percents, where="post", color=_ARM_COLOURS["canary"], linewidth=2)
    weight_ax.set_ylabel("canary weight %")
    weight_ax.set_ylim(-5, 105)
    weight_ax.set_title(f"{state.namespace}/{state.name}: {state.phase} at stage {state.stage}")
    for axis, event, label in ((error_ax, "errors", "error rate"), (slow_ax, "slow", "slow-request rate")):
        for arm, colour in _ARM_COLOURS.items():
            points = [(d.at - start, band) for d in state.decisions
                      if (band := _rate_band(d.counts.get(arm, {}), event)) is not None]  # fmt: skip
            if not points:
                continue
            xs = [x for x, _ in points]
            axis.plot(xs, [band[0] for _, band in points], marker="o", markersize=3, color=colour, label=arm)
            axis.fill_between(xs, [band[1] for _, band in points], [band[2] for _, band in points], color=colour,
                              alpha=0.2, linewidth=0)  # fmt: skip
        axis.set_ylabel(label)
        if axis.has_data():
            axis.legend(loc="upper left", fontsize=8)
    for decision in state.decisions:
        colour = _OUTCOME_COLOURS.get(decision.outcome, "#4a5568")
        for axis in (weight_ax, error_ax, slow_ax):
            axis.axvline(decision.at - start, color=colour, alpha=0.35, linewidth=1)
        if decision.action in ("step", "promote", "rollback", "pause"):
            weight_ax.annotate(decision.action, (decision.at - start, 100), fontsize=8, color=colour,
                               rotation=90, va="top", ha="right")  # fmt: skip
    slow_ax.set_xlabel("seconds since the rollout started")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return buffer.getvalue()


def _when(state: RolloutState, at: float) -> str:
    return f"+{at - state.started_at:.0f}s"


def _decision_row(state: RolloutState, decision: Decision) -> str:
    arms = "; ".join(
        f"{arm} {int(values.get('errors', 0))}/{int(values.get('requests', 0))} err, {int(values.get('slow', 0))} slow"
        for arm, values in sorted(decision.counts.items())
    )
    reasons = "; ".join(decision.reasons).replace("|", "\\|")
    cells = (_when(state, decision.at), decision.stage, decision.outcome, decision.action, arms, reasons)
    return "| " + " | ".join(cells) + " |"


def rollout_markdown(state: RolloutState, png: bytes) -> str:
    """The report page: summary, plot, and one table row per decision."""
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(state.started_at))
    stages = " → ".join(f"{stage}%" if stage.isdigit() else stage for stage in state.plan.stages) + " → promote"
    lines = [
        f"# Progressive rollout of {state.namespace}/{state.name}",
        "",
        "| | |",
        "|---|---|",
        f"| Result | **{state.phase}**{' (dry run)' if state.dry_run else ''} |",
        f"| Stage | {state.stage} |",
        f"| Message | {state.message.replace('|', '/')} |",
        f"| Stages | {stages} |",
        f"| Mode | {state.mode} |",
        f"| Run | {state.run_id} |",
        f"| Started | {started} |",
        f"| Failed ticks | {state.fail_count} |",
        "",
        f"![traffic weight and per-arm rates](data:image/png;base64,{base64.b64encode(png).decode('ascii')})",
        "",
        f"Bands: {BAND_LEVEL:.0%} credible intervals (Jeffreys prior) of each arm's rate over the decision's window.",
        "",
        "## Decisions",
        "",
        "| When | Stage | Outcome | Action | Counts | Reasons |",
        "|---|---|---|---|---|---|",
        *(_decision_row(state, decision) for decision in state.decisions),
    ]
    return "\n".join(lines) + "\n"


def rollout_audit(state: RolloutState, ticks: list[dict[str, Any]]) -> dict[str, Any]:
    """The JSON audit: the final state and every analysis tick with its queries, counts and checks."""
    return {"state": state.model_dump(mode="json"), "ticks": ticks}


def write_rollout_report(state: RolloutState, ticks: list[dict[str, Any]], markdown: Path, audit: Path) -> Path:
    """Write the Markdown report (and its HTML page beside it) and the JSON audit; return the page's path."""
    from aiserving.steps.report_page import write_report

    audit.parent.mkdir(parents=True, exist_ok=True)
    page = write_report(markdown, rollout_markdown(state, rollout_figure_png(state)))
    audit.write_text(json.dumps(rollout_audit(state, ticks), indent=2, allow_nan=False), encoding="utf-8")
    return page
