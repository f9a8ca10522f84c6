"""Step: deploy-fleet's exit handler: roll back every canary the run started, then report each model's result.

Each model is handed to the single-model rollback (:func:`aiserving.steps.canary.rollback_on_failure_step`), which
touches only an InferenceService stamped with this run's ID and with a canary in progress; then the live object
(or, for target render, the rendered manifest) is read back for the fleet's result table.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import yaml

from aiserving.steps.artifacts import ArtifactLike
from aiserving.steps.canary import rollback_on_failure_step
from aiserving.steps.deploy import check_target, rendered_path, service_metadata
from serving_core import isvc_lineage
from serving_core.errors import AiServingError, InvalidInputError

log = logging.getLogger(__name__)

TABLE_HEADER = (
    "| model | InferenceService | GPU resource | changed by this run | traffic | result |\n|---|---|---|---|---|---|\n"
)


def fleet_isvc_names(models: list[dict[str, Any]]) -> list[str]:
    """The InferenceService name of each item of deploy-fleet's ``models`` list.

    Raises:
        InvalidInputError: an item is not an object with a non-empty ``isvc_name``.
    """
    names = []
    for index, item in enumerate(models):
        name = item.get("isvc_name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidInputError(
                f"models[{index}] has no isvc_name: {item!r}",
                hint="pass the fleet-models.json that aiserving plan-fleet writes (each item names its isvc_name)",
            )
        names.append(name)
    return names


def fleet_rollback_step(
    models: list[dict[str, Any]],
    namespace: str,
    target: str,
    pipeline_run: str,
    state: str,
    error_message: str,
    report: ArtifactLike,
) -> str:
    """Roll back each canary this run started when the run did not succeed; write the per-model result table.

    Every model is tried, even after another one's rollback failed; the first such error is raised once the
    table is written, so the run shows it.

    Returns:
        A one-line summary: how many models were rolled back, left alone or serving.
    """
    names = fleet_isvc_names(models)
    check_target(target)
    results: dict[str, str] = {}
    failed: AiServingError | None = None
    for name in names:
        try:
            results[name] = rollback_on_failure_step(
                isvc_name=name, namespace=namespace, target=target, pipeline_run=pipeline_run, state=state,
                error_message=error_message,
            )  # fmt: skip
        except AiServingError as error:  # one model's failure must not stop the others' rollback
            log.exception("rolling back %s/%s failed", namespace, name)
            results[name] = f"rollback failed: {error}"
            failed = failed or error
    rows = [
        _row(item, name, namespace, target, pipeline_run, results[name])
        for item, name in zip(models, names, strict=True)
    ]
    heading = f"# deploy-fleet: {len(names)} model(s) in {namespace}, run {state}\n\n"
    Path(report.path).parent.mkdir(parents=True, exist_ok=True)
    Path(report.path).write_text(heading + TABLE_HEADER + "".join(rows), encoding="utf-8")
    if failed is not None:
        raise failed
    rolled_back = sum(result.startswith("rolled back") for result in results.values())
    return f"{len(names)} model(s): {rolled_back} rolled back; run {state}"


def _row(item: dict[str, Any], name: str, namespace: str, target: str, pipeline_run: str, result: str) -> str:
    changed, traffic = _live_state(name, namespace, target, pipeline_run)
    model_uri, resource = str(item.get("model_uri", "")), str(item.get("gpu_resource", ""))
    cells = [model_uri, f"{namespace}/{name}", resource, changed, traffic, result]
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |\n"


def _live_state(name: str, namespace: str, target: str, pipeline_run: str) -> tuple[str, str]:
    """Whether this run changed the InferenceService, and its traffic split, as read back after the rollback."""
    if target == "render":
        path = rendered_path(namespace, name)
        rendered = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
        by_this_run = rendered is not None and isvc_lineage.read(rendered).pipeline_run == pipeline_run
        return ("yes (rendered)" if by_this_run else "no"), "none (target render)"
    from inference_services.connection import connect
    from inference_services.isvc_api import InferenceServiceApi

    live = InferenceServiceApi(connect(), namespace).find(name)
    if live is None:
        return "no", "none (no InferenceService)"
    changed = "yes" if isvc_lineage.read(live).pipeline_run == pipeline_run else "no"
    shares = service_metadata(live, target, 0)["traffic"]
    split = " / ".join(f"{share['revision']} {share['percent']}%" for share in shares)
    return changed, split or "not reported yet"
