"""deploy-fleet's exit handler step on target render: each model's row, and bad ``models`` refused up front."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiserving.steps.deploy import RENDER_DIR_ENV, rendered_path
from aiserving.steps.fleet_rollback import fleet_rollback_step
from serving_core import isvc_lineage
from serving_core.errors import InvalidInputError


@dataclass
class Artifact:
    path: str
    metadata: dict[str, Any] = field(default_factory=dict)


MODELS = [
    {"model_uri": "models:/a/1", "isvc_name": "a", "gpu_resource": "nvidia.com/mig-1g.10gb"},
    {"model_uri": "models:/b/2", "isvc_name": "b", "gpu_resource": "nvidia.com/gpu.shared"},
]


def test_on_render_each_model_gets_a_row_saying_whether_this_run_rendered_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(RENDER_DIR_ENV, str(tmp_path / "rendered"))
    metadata: dict[str, Any] = {"name": "a", "namespace": "team-a"}
    isvc_lineage.stamp(metadata, isvc_lineage.IsvcLineage(pipeline_run="run-7"))
    path = rendered_path("team-a", "a")
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump({"kind": "InferenceService", "metadata": metadata}))
    report = Artifact(str(tmp_path / "out" / "report"))

    summary = fleet_rollback_step(MODELS, "team-a", "render", "run-7", "FAILED", "b failed", report)

    assert summary == "2 model(s): 0 rolled back; run FAILED"
    nothing = "nothing to roll back: target render changes no live object"
    assert Path(report.path).read_text() == (
        "# deploy-fleet: 2 model(s) in team-a, run FAILED\n\n"
        "| model | InferenceService | GPU resource | changed by this run | traffic | result |\n"
        "|---|---|---|---|---|---|\n"
        f"| models:/a/1 | team-a/a | nvidia.com/mig-1g.10gb | yes (rendered) | none (target render) | {nothing} |\n"
        f"| models:/b/2 | team-a/b | nvidia.com/gpu.shared | no | none (target render) | {nothing} |\n"
    )


def test_an_item_without_isvc_name_is_refused_naming_it_and_nothing_is_written(tmp_path: Path) -> None:
    report = Artifact(str(tmp_path / "report"))
    with pytest.raises(InvalidInputError, match=r"models\[1\] has no isvc_name: \{'model_uri': 'models:/b/2'\}"):
        fleet_rollback_step([MODELS[0], {"model_uri": "models:/b/2"}], "team-a", "render", "r", "FAILED", "", report)
    assert not Path(report.path).exists()
