"""The plan-fleet component through python_func: the plan's files, the Markdown report and deploy-fleet's list."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from aiserving.steps.fleet_plan import PLAN_FILES
from components.plan_fleet import plan_fleet
from serving_core.errors import InvalidInputError
from tests.support.artifacts import FakeArtifact

FLEET = {
    "models": [
        {"name": "ranker", "namespace": "team-a", "image": "registry.local/ranker:v7", "memory_mib": 9000,
         "latency_class": "realtime"},
        {"name": "embedder", "namespace": "team-a", "memory_mib": 30000, "latency_class": "realtime"},
        {"name": "big", "namespace": "team-a", "memory_mib": 60000, "may_share": False},
    ]
}  # fmt: skip
INVENTORY = {"nodes": [{"name": "gpu-a", "gpu": "A100-80GB", "gpus": 2}]}


def test_the_component_writes_the_plan_files_the_report_with_its_picture_and_returns_the_models(
    tmp_path: Path,
) -> None:
    report, plan = FakeArtifact(str(tmp_path / "report")), FakeArtifact(str(tmp_path / "plan"))

    models = plan_fleet.python_func(
        fleet=yaml.safe_dump(FLEET), inventory=json.dumps(INVENTORY), time_limit_s=1.0, report=report, plan=plan
    )

    assert sorted(path.name for path in Path(plan.path).iterdir()) == sorted(PLAN_FILES)
    assert models == json.loads((Path(plan.path) / "fleet-models.json").read_text())
    assert [(item["isvc_name"], item["gpu_resource"]) for item in models] == [
        ("ranker", "nvidia.com/mig-1g.10gb"),
        ("embedder", "nvidia.com/mig-3g.40gb"),
        ("big", "nvidia.com/gpu"),
    ]
    assert plan.metadata == {
        "gpus_used": 2, "gpus_total": 2, "lower_bound": 2,
        "solver": "heuristic (first-fit decreasing, ruin and recreate), proven optimal",
    }  # fmt: skip
    text = Path(report.path).read_text()
    picture = (Path(plan.path) / "fleet-plan.svg").read_bytes()
    # The Kubeflow UI shows a Markdown artifact alone: the picture is inline, not a link to a file beside it.
    assert f"![GPU layout per node](data:image/svg+xml;base64,{base64.b64encode(picture).decode()})" in text
    assert text.startswith("# GPU fleet plan\n\n3 models, 3 replicas on **2 of 2 GPUs**")


def test_a_fleet_larger_than_the_cluster_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    report, plan = FakeArtifact(str(tmp_path / "report")), FakeArtifact(str(tmp_path / "plan"))
    too_many = {"models": [{"name": f"m{i}", "memory_mib": 60000, "may_share": False} for i in range(3)]}

    with pytest.raises(InvalidInputError, match=r"the fleet does not fit the cluster \(2 GPUs\)"):
        plan_fleet.python_func(
            fleet=yaml.safe_dump(too_many), inventory=yaml.safe_dump(INVENTORY), time_limit_s=1.0, report=report,
            plan=plan,
        )  # fmt: skip

    assert not Path(plan.path).exists()
    assert not Path(report.path).exists()


def test_the_compiled_component_takes_text_and_gives_a_markdown_report_a_plan_and_the_models(tmp_path: Path) -> None:
    from kfp import compiler

    compiler.Compiler().compile(plan_fleet, str(tmp_path / "plan-fleet.yaml"))
    spec = yaml.safe_load((tmp_path / "plan-fleet.yaml").read_text())

    assert {name: value["parameterType"] for name, value in spec["root"]["inputDefinitions"]["parameters"].items()} == {
        "fleet": "STRING", "inventory": "STRING", "time_limit_s": "NUMBER_DOUBLE"
    }  # fmt: skip
    assert all(value["description"] for value in spec["root"]["inputDefinitions"]["parameters"].values())
    assert spec["root"]["outputDefinitions"] == {
        "artifacts": {
            "plan": {"artifactType": {"schemaTitle": "system.Artifact", "schemaVersion": "0.0.1"}},
            "report": {"artifactType": {"schemaTitle": "system.Markdown", "schemaVersion": "0.0.1"}},
        },
        "parameters": {"Output": {"parameterType": "LIST"}},
    }
