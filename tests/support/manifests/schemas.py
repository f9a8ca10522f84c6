"""Strict schema validators: KServe's CRDs (the API server's strict field validation emulated) and
our hand-written schemas for the other custom kinds."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

import jsonschema
import yaml

from inference_services.crd_validation import strict_schema
from tests.support.manifests.objects import Obj

REPO_ROOT = Path(__file__).resolve().parents[3]
# The Kubernetes minor versions the platform supports (docs/cluster-requirements.md).
SUPPORTED_KUBERNETES_VERSIONS = ("1.29", "1.30", "1.31", "1.32", "1.33")
# API groups whose kinds are built into Kubernetes and checked by kubernetes-validate.
CORE_API_GROUPS = {
    "",
    "apps",
    "batch",
    "policy",
    "autoscaling",
    "networking.k8s.io",
    "rbac.authorization.k8s.io",
    "scheduling.k8s.io",
}
HAND_SCHEMA_DIR = REPO_ROOT / "tests" / "manifests" / "schemas"

# KServe kinds -> CRD file name; each KServe release folder under the CRD dir holds all of them.
KSERVE_CRD_FILES = {
    "InferenceService": "serving.kserve.io_inferenceservices.yaml",
    "ServingRuntime": "serving.kserve.io_servingruntimes.yaml",
    "ClusterServingRuntime": "serving.kserve.io_clusterservingruntimes.yaml",
}
# Other custom kinds -> hand-written strict schema.
HAND_SCHEMAS = {
    "ClusterPolicy": "clusterpolicy.schema.yaml",
    "ScaledObject": "scaledobject.schema.yaml",
    "PodMonitor": "podmonitor.schema.yaml",
    "PrometheusRule": "prometheusrule.schema.yaml",
}


def api_group(obj: Obj) -> str:
    api_version = str(obj.get("apiVersion", ""))
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def validator_family(obj: Obj) -> str:
    """Which strict validator checks this object: core, kserve or hand; never none."""
    if obj.get("kind") in KSERVE_CRD_FILES and api_group(obj) == "serving.kserve.io":
        return "kserve"
    if obj.get("kind") in HAND_SCHEMAS:
        return "hand"
    if api_group(obj) in CORE_API_GROUPS:
        return "core"
    raise LookupError(f"no strict schema for {obj.get('apiVersion')} {obj.get('kind')}; add one to {HAND_SCHEMA_DIR}")


def kserve_crd_dir() -> Path:
    """``$KSERVE_CRD_DIR`` or ``../shared/kserve-crds`` next to the repository (never copied in)."""
    configured = os.environ.get("KSERVE_CRD_DIR")
    return Path(configured) if configured else REPO_ROOT.parent / "shared" / "kserve-crds"


def kserve_versions() -> list[str]:
    directory = kserve_crd_dir()
    return sorted(p.name for p in directory.iterdir() if p.is_dir()) if directory.is_dir() else []


def kserve_validator(kserve_version: str, kind: str, api_version: str) -> jsonschema.protocols.Validator:
    path = kserve_crd_dir() / kserve_version / KSERVE_CRD_FILES[kind]
    with path.open(encoding="utf-8") as handle:
        crd = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    group = crd["spec"]["group"]
    for version in crd["spec"]["versions"]:
        if f"{group}/{version['name']}" == api_version:
            schema = strict_schema(version["schema"]["openAPIV3Schema"])
            return jsonschema.Draft7Validator(schema)
    raise LookupError(f"KServe {kserve_version} has no {kind} {api_version}")


@cache
def hand_validator(kind: str) -> jsonschema.protocols.Validator:
    schema = yaml.safe_load((HAND_SCHEMA_DIR / HAND_SCHEMAS[kind]).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


def schema_errors(validator: jsonschema.protocols.Validator, obj: Obj) -> list[str]:
    return [
        f"{'.'.join(str(p) for p in error.absolute_path) or '<root>'}: {error.message}"
        for error in sorted(validator.iter_errors(obj), key=lambda e: list(map(str, e.absolute_path)))
    ]
