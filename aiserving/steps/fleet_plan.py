"""``aiserving plan-fleet``: read a fleet and an inventory, plan, and write the plan's files all at once."""

from __future__ import annotations

import base64
import json
import tempfile
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from aiserving.steps.artifacts import ArtifactLike
from gpu_planning import render
from gpu_planning.fleet import Fleet, Inventory
from gpu_planning.plan import FleetPlan, plan_fleet
from inference_services.config import GpuConfig, Toleration
from serving_core.errors import InvalidInputError
from serving_core.output_dirs import staged_output

PLAN_FILES = (
    "plan.json",
    "fleet-models.json",
    "deployments.yaml",
    "mig-parted-config.yaml",
    "device-plugin-config.yaml",
    "node-labels.yaml",
    "report.md",
    "fleet-plan.svg",
)


def _yaml(document: object) -> str:
    return yaml.safe_dump(document, sort_keys=False)


def _load(path: Path, kind: type[Fleet] | type[Inventory]) -> Any:
    if not path.is_file():
        raise InvalidInputError(f"{path} does not exist", hint=f"pass the {kind.__name__.lower()} YAML file")
    try:
        return kind.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
    except (yaml.YAMLError, ValidationError) as error:
        raise InvalidInputError(
            f"{path} is not a valid {kind.__name__.lower()}: {error}",
            hint="see docs/gpu-planning.md for the fields",
        ) from error


def plan_fleet_files(fleet_file: Path, inventory_file: Path, out: Path, *, time_limit_s: float = 1.0) -> FleetPlan:
    """Plan ``fleet_file`` on ``inventory_file`` and write PLAN_FILES into the new or empty directory ``out``.

    Raises:
        InvalidInputError: a bad file, an unknown GPU, an impossible MIG layout, a model bigger than any GPU or a
            fleet that does not fit; nothing is written then.
    """
    fleet: Fleet = _load(fleet_file, Fleet)
    inventory: Inventory = _load(inventory_file, Inventory)
    plan = plan_fleet(fleet, inventory, time_limit_s=time_limit_s)
    settings = render.deployment_settings(fleet, plan)
    # The GPU and toleration blocks are checked by the deploy config's own types before anything is written.
    for name, fields in settings.items():
        try:
            GpuConfig.model_validate(fields["gpu"])
            [Toleration.model_validate(t) for t in fields.get("tolerations", [])]
        except ValidationError as error:
            raise InvalidInputError(f"planned settings of {name} are not a valid deploy config: {error}") from error
    with staged_output(out) as staging:
        (staging / "plan.json").write_text(plan.model_dump_json(indent=2) + "\n", encoding="utf-8")
        models = render.deploy_fleet_models(fleet, plan)
        (staging / "fleet-models.json").write_text(json.dumps(models, indent=2) + "\n", encoding="utf-8")
        (staging / "deployments.yaml").write_text(
            yaml.safe_dump_all(list(settings.values()), sort_keys=False), encoding="utf-8"
        )
        (staging / "mig-parted-config.yaml").write_text(_yaml(render.mig_parted_config(plan)), encoding="utf-8")
        (staging / "device-plugin-config.yaml").write_text(_yaml(render.device_plugin_configs(plan)), encoding="utf-8")
        (staging / "node-labels.yaml").write_text(_yaml(render.node_labels(plan)), encoding="utf-8")
        (staging / "report.md").write_text(render.markdown(fleet, plan), encoding="utf-8")
        (staging / "fleet-plan.svg").write_text(render.svg(plan), encoding="utf-8")
    return plan


def plan_fleet_step(
    fleet: str, inventory: str, time_limit_s: float, *, report: ArtifactLike, plan_files: ArtifactLike
) -> list[dict[str, Any]]:
    """The plan-fleet component: plan a fleet given as YAML (or JSON) text and write what ``plan-fleet`` writes.

    ``plan_files`` becomes the directory of PLAN_FILES (its metadata: GPUs used and total, lower bound, solver);
    ``report`` the Markdown report with the picture inline, as the Kubeflow UI shows a Markdown artifact.

    Returns:
        The ``models`` list for deploy-fleet (fleet-models.json).

    Raises:
        InvalidInputError: as :func:`plan_fleet_files`; nothing is written then.
    """
    with tempfile.TemporaryDirectory(prefix="plan-fleet-") as scratch:
        fleet_file, inventory_file = Path(scratch) / "fleet.yaml", Path(scratch) / "inventory.yaml"
        fleet_file.write_text(fleet, encoding="utf-8")
        inventory_file.write_text(inventory, encoding="utf-8")
        parsed: Fleet = _load(fleet_file, Fleet)
        plan = plan_fleet_files(fleet_file, inventory_file, Path(plan_files.path), time_limit_s=time_limit_s)
    out = Path(plan_files.path)
    picture = base64.b64encode((out / "fleet-plan.svg").read_bytes()).decode("ascii")
    Path(report.path).parent.mkdir(parents=True, exist_ok=True)
    Path(report.path).write_text(
        render.markdown(parsed, plan, image=f"data:image/svg+xml;base64,{picture}"), encoding="utf-8"
    )
    plan_files.metadata.update(
        {"gpus_used": plan.gpus_used, "gpus_total": plan.gpus_total, "lower_bound": plan.lower_bound,
         "solver": plan.solver}
    )  # fmt: skip
    models: list[dict[str, Any]] = json.loads((out / "fleet-models.json").read_text(encoding="utf-8"))
    return models
