"""Replica counts, PodDisruptionBudgets and autoscaler consistency."""

from __future__ import annotations

import re

from tests.support.manifests.objects import (
    ISVC_LABEL,
    Obj,
    annotations_of,
    name_of,
    namespace_of,
    of_kind,
    ref,
    selector_matches,
)
from tests.support.manifests.pods import KNATIVE, STANDARD, deployment_mode

_AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
_KNATIVE_METRICS = {"concurrency", "rps"}
_HPA_METRICS = {"cpu", "memory"}
_NAMESPACE_MATCHER = re.compile(r'namespace="([^"]*)"')


def scaled_object_for(objects: list[Obj], isvc: Obj) -> Obj | None:
    """The ScaledObject that scales this InferenceService's predictor Deployment, if any."""
    for scaled in of_kind(objects, "ScaledObject"):
        target = scaled.get("spec", {}).get("scaleTargetRef", {})
        if namespace_of(scaled) == namespace_of(isvc) and target.get("name") == f"{name_of(isvc)}-predictor":
            return scaled
    return None


def effective_min_replicas(objects: list[Obj], isvc: Obj) -> int:
    """KEDA's minReplicaCount wins where a ScaledObject scales the predictor; KServe defaults to 1."""
    scaled = scaled_object_for(objects, isvc)
    if scaled is not None:
        return int(scaled["spec"].get("minReplicaCount", 0))
    return int(isvc.get("spec", {}).get("predictor", {}).get("minReplicas", 1))


def check_pod_disruption_budgets(objects: list[Obj]) -> list[str]:
    """PDBs select one InferenceService with >= 2 replicas, and always allow one disruption.

    A PDB on a single replica (or with maxUnavailable 0) blocks node drains, including the GPU
    Operator's driver-upgrade drain.
    """
    problems = []
    isvcs = of_kind(objects, "InferenceService")
    for pdb in of_kind(objects, "PodDisruptionBudget"):
        spec = pdb.get("spec", {})
        if "minAvailable" in spec:
            problems.append(f"{ref(pdb)}: use maxUnavailable: 1, not minAvailable (it blocks drains at low replicas)")
        if str(spec.get("maxUnavailable", "")).rstrip("%") in ("0", ""):
            problems.append(f"{ref(pdb)}: maxUnavailable must be at least 1; 0 blocks every drain")
        if ISVC_LABEL not in (spec.get("selector", {}).get("matchLabels") or {}):
            problems.append(f"{ref(pdb)}: select pods by matchLabels {ISVC_LABEL}: <name>")
        selected = [
            isvc
            for isvc in isvcs
            if namespace_of(isvc) == namespace_of(pdb)
            and selector_matches(spec.get("selector"), {ISVC_LABEL: name_of(isvc), "component": "predictor"})
        ]
        if not selected:
            problems.append(f"{ref(pdb)}: selects no InferenceService in this namespace")
        for isvc in selected:
            replicas = effective_min_replicas(objects, isvc)
            if replicas < 2:
                problems.append(f"{ref(pdb)}: {ref(isvc)} runs min {replicas} replica(s); a PDB needs >= 2")
    return problems


def check_inference_service_scaling(objects: list[Obj]) -> list[str]:
    """Mode, autoscaler class and scale metric must agree, as KServe 0.14-0.21 accept them."""
    problems = []
    for isvc in of_kind(objects, "InferenceService"):
        mode = deployment_mode(isvc)
        annotations = annotations_of(isvc)
        predictor = isvc.get("spec", {}).get("predictor", {})
        autoscaler = annotations.get(_AUTOSCALER_CLASS)
        metric = predictor.get("scaleMetric")
        if mode not in (KNATIVE, STANDARD):
            problems.append(
                f"{ref(isvc)}: deploymentMode {mode} is not known to KServe 0.14/0.15; use Serverless or RawDeployment"
            )
        if mode == KNATIVE and metric not in (None, *_KNATIVE_METRICS):
            problems.append(f"{ref(isvc)}: Knative scales on concurrency or rps, not {metric!r}")
        if mode == STANDARD and metric not in (None, *_HPA_METRICS):
            problems.append(f"{ref(isvc)}: KServe's HPA scales on cpu or memory, not {metric!r}")
        if autoscaler is not None and mode != STANDARD:
            problems.append(f"{ref(isvc)}: {_AUTOSCALER_CLASS} applies to RawDeployment only")
        if predictor.get("minReplicas") == 0 and mode != KNATIVE:
            problems.append(f"{ref(isvc)}: minReplicas 0 (scale to zero) needs Knative mode; HPA clamps it to 1")
        if mode == KNATIVE and "deploymentStrategy" in predictor:
            problems.append(f"{ref(isvc)}: deploymentStrategy is rejected in Knative mode")
        for key in ("autoscaling.knative.dev/min-scale", "autoscaling.knative.dev/max-scale"):
            if key in annotations:
                problems.append(f"{ref(isvc)}: set minReplicas/maxReplicas instead of the {key} annotation")
        if autoscaler in ("external", "none") and scaled_object_for(objects, isvc) is None:
            problems.append(
                f"{ref(isvc)}: autoscalerClass {autoscaler} but no ScaledObject scales {name_of(isvc)}-predictor"
            )
    return problems


def check_scaled_objects(objects: list[Obj]) -> list[str]:
    """ScaledObjects target a predictor whose KServe HPA is off, and can always scale back up."""
    problems = []
    isvcs = {(namespace_of(isvc), f"{name_of(isvc)}-predictor"): isvc for isvc in of_kind(objects, "InferenceService")}
    for scaled in of_kind(objects, "ScaledObject"):
        spec = scaled.get("spec", {})
        target = spec.get("scaleTargetRef", {})
        isvc = isvcs.get((namespace_of(scaled), target.get("name")))
        if isvc is None or target.get("kind", "Deployment") != "Deployment":
            problems.append(
                f"{ref(scaled)}: scaleTargetRef must be the Deployment <isvc>-predictor of an InferenceService"
            )
        elif annotations_of(isvc).get(_AUTOSCALER_CLASS) not in ("external", "none"):
            problems.append(
                f"{ref(scaled)}: {ref(isvc)} needs {_AUTOSCALER_CLASS}: external, or KServe's HPA fights KEDA's"
            )
        for trigger in spec.get("triggers") or []:
            query = str((trigger.get("metadata") or {}).get("query", ""))
            if trigger.get("type") != "prometheus":
                continue
            namespaces = set(_NAMESPACE_MATCHER.findall(query))
            if namespaces != {namespace_of(scaled)}:
                problems.append(
                    f'{ref(scaled)}: the Prometheus query must filter namespace="{namespace_of(scaled)}", '
                    f"found {sorted(namespaces)}"
                )
            if spec.get("minReplicaCount", 0) == 0 and str(target.get("name")) in query:
                problems.append(
                    f"{ref(scaled)}: minReplicaCount 0 with a trigger on the target's own pods never scales up "
                    "again; keep 1 or use an upstream signal"
                )
    return problems
