"""The rollout report: Markdown with the embedded plot, its HTML page, and the JSON audit."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

from aiserving.steps.rollout_report import rollout_figure_png, rollout_markdown, write_rollout_report
from progressive_delivery.rollout_state import Decision, Phase, RolloutPlan, RolloutState, WeightPoint, Written

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _state() -> RolloutState:
    counts = {"stable": {"requests": 300.0, "errors": 3.0, "slow": 6.0},
              "canary": {"requests": 100.0, "errors": 9.0, "slow": 2.0}}  # fmt: skip
    return RolloutState(
        run_id="run-7", name="iris", namespace="ai", mode="serverless", plan=RolloutPlan(steps=(10, 50), shadow=True),
        phase=Phase.ROLLED_BACK, stage_index=1, stage_started_at=110.0, started_at=100.0, updated_at=130.0,
        message="rolled back: stage 10 failed: error: canary 9/100 | worse", written=Written(canary_percent=0,
        generation=4), weights=(WeightPoint(at=110.0, percent=10), WeightPoint(at=130.0, percent=0)),
        decisions=(
            Decision(at=105.0, stage="shadow", outcome="PASS", action="step", reasons=("agreement 0.99",)),
            Decision(at=120.0, stage="10", outcome="INCONCLUSIVE", action="wait", counts=counts),
            Decision(at=130.0, stage="10", outcome="FAIL", action="rollback", reasons=("error: 9 %",), counts=counts),
        ),
    )  # fmt: skip


def test_the_figure_is_a_png() -> None:
    png = rollout_figure_png(_state())
    assert png.startswith(PNG_MAGIC)
    width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
    assert (width, height) == (900, 750)


def test_markdown_has_the_summary_the_plot_and_every_decision() -> None:
    png = rollout_figure_png(_state())
    text = rollout_markdown(_state(), png)
    lines = text.splitlines()
    assert lines[0] == "# Progressive rollout of ai/iris"
    assert "| Result | **rolled-back** |" in lines
    assert "| Message | rolled back: stage 10 failed: error: canary 9/100 / worse |" in lines
    assert "| Stages | shadow → 10% → 50% → promote |" in lines
    [image] = re.findall(r"!\[[^\]]*\]\(data:image/png;base64,([A-Za-z0-9+/=]+)\)", text)
    assert base64.b64decode(image) == png
    rows = lines[lines.index("|---|---|---|---|---|---|") + 1 :]
    assert rows == [
        "| +5s | shadow | PASS | step |  | agreement 0.99 |",
        "| +20s | 10 | INCONCLUSIVE | wait | canary 9/100 err, 2 slow; stable 3/300 err, 6 slow |  |",
        "| +30s | 10 | FAIL | rollback | canary 9/100 err, 2 slow; stable 3/300 err, 6 slow | error: 9 % |",
    ]


def test_report_files(tmp_path: Path) -> None:
    ticks = [{"stage": "10", "outcome": "FAIL", "queries": [{"query": "sum(increase(x[5s]))", "value": 9.0}]}]
    page = write_rollout_report(_state(), ticks, tmp_path / "report.md", tmp_path / "audit.json")
    assert page == tmp_path / "report.md.html"
    assert '<img src="data:image/png;base64,' in page.read_text()
    audit = json.loads((tmp_path / "audit.json").read_text())
    assert audit["ticks"] == ticks
    assert audit["state"]["phase"] == "rolled-back"
    assert len(audit["state"]["decisions"]) == 3
