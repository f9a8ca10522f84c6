"""The ServingRuntimes that ``manifests/base/runtimes`` installs, and the server flags of the Python one.

The one place deploys take runtime names from: tests/unit/isvc/test_serving_runtimes.py checks every
name, model format and protocol against the kustomize output of manifests/, and the flags against the
model server's own command line (``model_wrappers.settings``).
"""

from __future__ import annotations

from typing import Literal

PackageRuntime = Literal["triton", "torchserve", "tfserving", "python"]

# Our hardened runtimes (non-root, read-only root where the server allows it, pinned images), never
# KServe's stock ClusterServingRuntimes (kserve-tritonserver, ...), which a cluster may not even have.
PYTHON_RUNTIME = "creativeflow-mlflow-wrapper"
SERVING_RUNTIMES: dict[PackageRuntime, str] = {
    "triton": "creativeflow-triton",
    "torchserve": "creativeflow-torchserve",
    "tfserving": "creativeflow-tfserving",
    "python": PYTHON_RUNTIME,
}

# Flags of ``python -m model_wrappers`` (model_wrappers/settings.py). KServe appends the InferenceService
# container's args to the runtime container's, so these follow the runtime's --model-dir/--port flags.
MAX_BATCH_SIZE_FLAG = "--max-batch-size"
MAX_LATENCY_MS_FLAG = "--max-latency-ms"
