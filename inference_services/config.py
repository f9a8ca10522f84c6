"""The deployment config: everything needed to put one model on GPUs behind a KServe InferenceService.

Validated before any request is sent: names, storage URIs, GPU counts and sharing, MIG strategy,
autoscaler/mode combinations KServe rejects, canary percent. ``aiserving render`` and ``aiserving
deploy`` read it from YAML or JSON; its JSON schema is exported to ``docs/deployment-config.schema.json``.
"""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from inference_services.runtimes import MAX_BATCH_SIZE_FLAG, MAX_LATENCY_MS_FLAG, PYTHON_RUNTIME
from inference_services.traffic import DeploymentMode
from serving_core.errors import InvalidInputError, NotFoundError

DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
STORAGE_URI = r"^(oci://[^@\s]+@sha256:[0-9a-f]{64}|s3://\S+|gs://\S+|pvc://[a-z0-9][-a-z0-9.]*/\S*)$"
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"
MIG_PROFILE = r"^[1-7]g\.[0-9]+gb(\.me)?$"
LABEL_VALUE = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"

# "<name>-predictor-00001" must fit a 63-character label value.
MAX_NAME_LENGTH = 47

StrictCount = Annotated[int, Field(strict=True, ge=1)]
Replicas = Annotated[int, Field(strict=True, ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GpuSharing(StrEnum):
    """How the predictor gets its GPU."""

    WHOLE = "whole"
    MIG = "mig"
    TIME_SLICED = "time-sliced"


class GpuConfig(_Strict):
    """GPUs for the predictor container, and which nodes may run it."""

    count: StrictCount = Field(default=1, description="whole GPUs, MIG slices or time-sliced shares (an integer >= 1)")
    sharing: GpuSharing = GpuSharing.WHOLE
    mig_profile: str | None = Field(
        default=None, pattern=MIG_PROFILE, description="e.g. 1g.10gb; only with sharing: mig"
    )
    mig_strategy: Literal["none", "single", "mixed"] | None = Field(
        None, description="the GPU Operator's MIG strategy on the target nodes; only with sharing: mig"
    )
    products: list[str] = Field(default_factory=list, description="allowed nvidia.com/gpu.product values")
    min_memory_mib: int | None = Field(
        default=None, strict=True, ge=1, description="minimum nvidia.com/gpu.memory (MiB)"
    )

    @model_validator(mode="after")
    def _sharing_fits(self) -> GpuConfig:
        if self.sharing is GpuSharing.MIG:
            if self.mig_profile is None or self.mig_strategy is None:
                raise ValueError("sharing: mig needs mig_profile (e.g. 1g.10gb) and mig_strategy (single or mixed)")
            if self.mig_strategy == "none":
                raise ValueError(
                    "mig_strategy none exposes no MIG devices; use single (slices appear as nvidia.com/gpu) or "
                    "mixed (slices appear as nvidia.com/mig-<profile>)"
                )
            if self.mig_strategy == "single" and self.mig_profile.endswith(".me"):
                raise ValueError(f"MIG profile {self.mig_profile} with media extensions needs mig_strategy mixed")
        elif self.mig_profile is not None or self.mig_strategy is not None:
            raise ValueError(f"mig_profile and mig_strategy apply only to sharing: mig, not {self.sharing.value}")
        if self.sharing is GpuSharing.TIME_SLICED and self.count != 1:
            raise ValueError(
                f"time-sliced count {self.count}: a pod can get only one share (failRequestsGreaterThanOne); "
                "use whole GPUs or MIG for more"
            )
        return self

    @property
    def resource_name(self) -> str:
        """The extended resource the device plugin advertises for this choice."""
        if self.sharing is GpuSharing.TIME_SLICED:
            return "nvidia.com/gpu.shared"
        if self.sharing is GpuSharing.MIG and self.mig_strategy == "mixed":
            return f"nvidia.com/mig-{self.mig_profile}"
        return "nvidia.com/gpu"


class Toleration(_Strict):
    """A pod toleration (the Kubernetes fields)."""

    key: str
    operator: Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class KedaMetric(_Strict):
    """An external KEDA trigger (Prometheus or Graphite query)."""

    backend: Literal["prometheus", "graphite"] = "prometheus"
    server_address: str
    query: str
    target_value: str = Field(pattern=QUANTITY)
    namespace: str | None = None


class Autoscaling(_Strict):
    """Replica bounds and the scaler; KServe's rules per mode are checked by the config."""

    min_replicas: Replicas | None = None
    max_replicas: Replicas | None = Field(default=None, description="0 means unlimited")
    scale_metric: Literal["cpu", "memory", "concurrency", "rps"] | None = None
    scale_target: StrictCount | None = None
    autoscaler_class: Literal["hpa", "keda", "none"] | None = Field(default=None, description="Standard mode only")
    keda_metrics: list[KedaMetric] = Field(default_factory=list)


class Lineage(_Strict):
    """Where the model came from; stamped on the InferenceService as labels and annotations."""

    model_name: str = Field(pattern=LABEL_VALUE, max_length=63)
    model_version: str = Field(pattern=LABEL_VALUE, max_length=63)
    run_id: str | None = None
    digest: str | None = Field(default=None, pattern=r"^sha256:[0-9a-f]{64}$")
    pipeline_run: str | None = Field(
        default=None,
        description="the Kubeflow run that deployed it (its exit handler may roll back only its own canary)",
    )


class Batching(_Strict):
    """Adaptive batching of our Python runtime's server, passed to it as command-line flags.

    Other runtimes read their batching from the package (Triton's config.pbtxt, TorchServe's
    config.properties); only ``python -m model_wrappers`` takes it from the InferenceService.
    """

    max_batch_size: StrictCount = Field(description="most rows in one predict call; 1 turns batching off")
    max_latency_ms: float = Field(ge=0, description="longest a request waits for others to join its batch")

    def server_args(self) -> list[str]:
        """The flags, in the form the model server parses (``--max-batch-size=N``)."""
        return [f"{MAX_BATCH_SIZE_FLAG}={self.max_batch_size}", f"{MAX_LATENCY_MS_FLAG}={self.max_latency_ms:g}"]


class DeploymentConfig(_Strict):
    """One InferenceService with a GPU (or CPU) predictor."""

    name: str = Field(pattern=DNS_LABEL, max_length=MAX_NAME_LENGTH, description="DNS-1123 label, starts with a letter")
    namespace: str | None = Field(
        default=None, pattern=DNS_LABEL, max_length=63, description="default: -n or the context's"
    )
    runtime: str | None = Field(
        default=None,
        description="ServingRuntime name, e.g. creativeflow-triton (manifests/base/runtimes); omitted: KServe picks",
    )
    model_format: str | None = Field(default=None, description="e.g. triton, onnx, pytorch, sklearn, mlflow")
    model_format_version: str | None = None
    storage_uri: str | None = Field(
        default=None, pattern=STORAGE_URI, description="oci://REF@sha256:…, s3://, gs://, pvc://"
    )
    image: str | None = Field(default=None, description="a predictor image (instead of storage_uri), pinned by digest")
    protocol_version: Literal["v1", "v2", "grpc-v1", "grpc-v2"] | None = None
    runtime_version: str | None = None
    batching: Batching | None = Field(default=None, description=f"server flags; only with runtime: {PYTHON_RUNTIME}")
    cpu: str | None = Field(default=None, pattern=QUANTITY, description="CPU request = limit, e.g. 2 or 500m")
    memory: str | None = Field(default=None, pattern=QUANTITY, description="memory request = limit, e.g. 8Gi")
    gpu: GpuConfig | None = None
    tolerations: list[Toleration] | None = Field(
        default=None, description="default with a GPU: nvidia.com/gpu NoSchedule"
    )
    runtime_class_name: str | None = None
    priority_class_name: str | None = None
    service_account_name: str | None = None
    autoscaling: Autoscaling = Field(default_factory=lambda: Autoscaling())
    mode: DeploymentMode = DeploymentMode.KNATIVE
    canary_percent: int | None = Field(default=None, strict=True, description="0-100: share for the new version")
    lineage: Lineage | None = None
    kserve_version: str = Field(default="0.20", description="the KServe release of the target cluster")

    @model_validator(mode="after")
    def _consistent(self) -> DeploymentConfig:
        if (self.storage_uri is None) == (self.image is None):
            raise ValueError("give exactly one of storage_uri (a model for a runtime) or image (a predictor image)")
        if self.storage_uri is not None and self.model_format is None:
            raise ValueError("storage_uri needs model_format, so KServe can pick a runtime")
        if self.batching is not None and self.runtime != PYTHON_RUNTIME:
            raise ValueError(
                f"batching: only runtime {PYTHON_RUNTIME} takes batching flags, not {self.runtime}; other runtimes "
                "batch as their package says (Triton config.pbtxt, TorchServe config.properties)"
            )
        if self.canary_percent is not None and not 0 <= self.canary_percent <= 100:
            raise ValueError(f"canary_percent {self.canary_percent} is outside 0-100")
        self._check_autoscaling()
        return self

    def _check_autoscaling(self) -> None:
        scaling = self.autoscaling
        knative = self.mode is DeploymentMode.KNATIVE
        if scaling.min_replicas is not None and scaling.max_replicas and scaling.min_replicas > scaling.max_replicas:
            raise ValueError(f"min_replicas {scaling.min_replicas} > max_replicas {scaling.max_replicas}")
        if knative:
            if scaling.autoscaler_class is not None:
                raise ValueError(
                    f"autoscaler_class {scaling.autoscaler_class} applies to Standard mode; Knative mode uses its "
                    "own autoscaler (KPA): drop autoscaler_class or use mode: standard"
                )
            if scaling.scale_metric in ("cpu", "memory"):
                raise ValueError(
                    f"scale_metric {scaling.scale_metric} needs Standard mode (HPA); Knative scales on "
                    "concurrency or rps"
                )
            return
        klass = scaling.autoscaler_class or "hpa"
        if scaling.scale_metric in ("concurrency", "rps"):
            raise ValueError(f"scale_metric {scaling.scale_metric} is Knative-only; Standard mode scales on cpu/memory")
        if scaling.keda_metrics and klass != "keda":
            raise ValueError("keda_metrics need autoscaler_class: keda")
        if klass == "keda" and not scaling.keda_metrics and scaling.scale_metric is None:
            raise ValueError("autoscaler_class keda needs keda_metrics or a scale_metric")
        if klass == "hpa" and scaling.min_replicas == 0:
            raise ValueError("min_replicas 0 needs Knative mode (HPA keeps at least one replica)")
        if klass == "none" and (scaling.scale_metric or scaling.scale_target):
            raise ValueError("autoscaler_class none means no autoscaler: drop scale_metric and scale_target")

    @property
    def effective_tolerations(self) -> list[Toleration]:
        """The tolerations to set: the given ones, or the GPU default when a GPU is asked for."""
        if self.tolerations is not None:
            return list(self.tolerations)
        if self.gpu is not None:
            return [Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")]
        return []


def _error_lines(error: ValidationError) -> str:
    lines = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "config"
        lines.append(f"{where}: {problem['msg']} (got {problem.get('input')!r})")
    return "; ".join(lines)


def parse_config(document: Any, source: str = "config") -> DeploymentConfig:
    """Validate a parsed YAML/JSON document.

    Raises:
        InvalidInputError: every bad field, with the value it had.
    """
    try:
        return DeploymentConfig.model_validate(document)
    except ValidationError as error:
        raise InvalidInputError(
            f"{source} is not a valid deployment config: {_error_lines(error)}",
            hint="see docs/deploying.md and docs/deployment-config.schema.json",
        ) from error


def load_config(path: Path) -> DeploymentConfig:
    """Read and validate a deployment config file (YAML or JSON).

    Raises:
        InvalidInputError: unreadable, not YAML, or not a valid config.
        NotFoundError: the file does not exist.
    """
    if not path.is_file():
        raise NotFoundError(f"deployment config {path} does not exist", hint="pass the path of a YAML config")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise InvalidInputError(
            f"deployment config {path} is not valid YAML: {error}", hint="fix the syntax"
        ) from error
    return parse_config(document, str(path))


def config_json_schema() -> str:
    """The config's JSON schema, as exported to docs/."""
    return json.dumps(DeploymentConfig.model_json_schema(), indent=2, sort_keys=True) + "\n"
