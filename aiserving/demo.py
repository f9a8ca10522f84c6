"""``make demo``: the main job on embedded defaults, on this machine only.

Everything keeps its state under ``./.aiserving/``; a second run reuses the
MLflow database, the registered model and the registry's blobs.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import time
from pathlib import Path

import yaml

from aiserving.local.busybox_base import push_busybox_base
from aiserving.local.mlflow_server import LocalMlflowServer
from aiserving.local.package_prediction import predict_input_example
from aiserving.local.registry import LocalRegistry
from aiserving.pipeline_ops.local_run import run_locally
from mlflow_source import Lineage, RegistryConnection, resolve_model

DEMO_MODEL = "demo-iris-classifier"
DEMO_ALIAS = "champion"


def register_demo_model(tracking_uri: str, name: str = DEMO_MODEL, alias: str = DEMO_ALIAS) -> str:
    """Train and register the demo classifier unless a version exists; return the version."""
    import mlflow
    from mlflow.tracking import MlflowClient
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    client = MlflowClient(tracking_uri=tracking_uri)
    existing = client.search_model_versions(f"name='{name}'")
    if existing:
        version = str(max(int(found.version) for found in existing))
    else:
        features, labels = load_iris(return_X_y=True, as_frame=False)
        features = features.astype("float32")
        classifier = LogisticRegression(max_iter=500).fit(features, labels)
        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_experiment("aiserving-demo")
        with mlflow.start_run(run_name="demo-iris"):
            info = mlflow.sklearn.log_model(
                classifier,
                name="model",
                input_example=features[:3],
                registered_model_name=name,
                pip_requirements=["scikit-learn"],
            )
        version = str(info.registered_model_version)
    client.set_registered_model_alias(name, alias, version)
    return version


def _image_target(stack: contextlib.ExitStack, state_dir: Path) -> tuple[str, str, bool]:
    """Where the demo pushes: a local docker-registry when Debian's is installed, else an OCI layout.

    Returns the image reference, the modelcar base and whether the registry is plain HTTP.
    """
    if shutil.which("docker-registry") and shutil.which("busybox"):
        registry = stack.enter_context(LocalRegistry(state_dir / "registry"))
        base = push_busybox_base(f"{registry.host}/base/busybox:demo", state_dir)
        print(f"OCI registry:  http://{registry.host} (docker-registry, state in {registry.state_dir})")
        return f"{registry.host}/models/{DEMO_MODEL}:demo", base, True
    layout = state_dir / "images" / DEMO_MODEL
    print(f"OCI registry:  none running (apt-get install docker-registry busybox-static); using layout {layout}")
    # Without busybox there is no modelcar base to append to: the layout holds the model layer alone.
    return f"oci-layout:{layout}:demo", "scratch", False


def _only(root: Path, pattern: str) -> Path:
    return sorted(root.rglob(pattern))[-1]


def run_demo(state_dir: Path) -> Lineage:
    """Run the whole chain locally and return the deployed model's lineage.

    MLflow (demo model, alias champion) → ``deploy-model`` through the KFP local runner → image in a
    local registry or OCI layout → InferenceService rendered and CRD-validated → the package served
    by its runtime and one prediction → a summary of what was produced where.
    """
    state_dir = state_dir.absolute()
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(LocalMlflowServer(state_dir / "mlflow"))
        print(f"MLflow server: {server.uri} (state in {server.state_dir})")
        version = register_demo_model(server.uri)
        uri = f"models:/{DEMO_MODEL}@{DEMO_ALIAS}"
        resolved = resolve_model(uri, RegistryConnection.from_settings(server.uri))
        print(f"Resolved {uri} → version {resolved.version} (run {resolved.run_id})")
        image, base, insecure = _image_target(stack, state_dir)
        run_root = state_dir / "kfp-local" / time.strftime("%Y%m%d-%H%M%S")
        arguments = {
            "model_uri": uri, "tracking_uri": server.uri, "runtime": "python", "instance_kind": "cpu",
            "image": image, "insecure_registry": insecure, "isvc_name": DEMO_MODEL, "namespace": "ai-serving",
            "gpu_count": 1, "canary_percent": 10, "target": "render",
        }  # fmt: skip
        environment = {
            "AISERVING_MODELCAR_BASE": base,
            "AISERVING_RENDER_DIR": str(state_dir / "rendered"),
            "AISERVING_CACHE_DIR": str(state_dir / "cache"),
        }
        print(f"Running deploy-model through the KFP local runner (target render), outputs in {run_root}")
        run_locally("deploy-model", arguments, run_root, environment=environment)
        package = _only(run_root, "package-model/package/package.json").parent
        sent, received = predict_input_example(package, state_dir / "serve")
    lineage = Lineage.read(_only(run_root, "resolve-model/model/lineage.json").parent)
    manifest = _only(run_root, "deploy-inference-service/manifest")
    storage = yaml.safe_load(manifest.read_text())["spec"]["predictor"]["model"]["storageUri"]
    print("Lineage:")
    print(json.dumps(lineage.model_dump(mode="json"), indent=2))
    print(f"Prediction by the Python wrapper for {sent}: {received}")
    print("Summary:")
    print(f"  model       {lineage.name} v{version} ({lineage.content_digest})")
    print(f"  package     {package} (runtime python, verified against MLflow)")
    print(f"  image       {storage}")
    print(f"  manifest    {manifest} (validated against the KServe v0.20 CRD)")
    print(f"  report      {_only(run_root, 'deployment-report/report')}")
    return lineage
