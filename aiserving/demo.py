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
from typing import Any

import yaml

from aiserving.local.busybox_base import push_busybox_base
from aiserving.local.mlflow_server import LocalMlflowServer
from aiserving.local.package_prediction import predict_input_example
from aiserving.local.registry import LocalRegistry
from aiserving.pipeline_ops.local_run import run_locally
from aiserving.pipeline_ops.run_console import RunConsole
from aiserving.steps.report_page import page_path
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


def image_target(stack: contextlib.ExitStack, state_dir: Path, console: RunConsole) -> tuple[str, str, bool]:
    """Where the demo pushes: a local docker-registry when Debian's is installed, else an OCI layout.

    Returns the image reference, the modelcar base and whether the registry is plain HTTP.
    """
    if shutil.which("docker-registry") and shutil.which("busybox"):
        registry = stack.enter_context(LocalRegistry(state_dir / "registry"))
        base = push_busybox_base(f"{registry.host}/base/busybox:demo", state_dir)
        console.say(f"Registry    http://{registry.host} (docker-registry, state in {shown(registry.state_dir)})")
        return f"{registry.host}/models/{DEMO_MODEL}:demo", base, True
    layout = state_dir / "images" / DEMO_MODEL
    console.say(
        f"Registry    none: docker-registry is not installed, so the image goes to an OCI layout in {shown(layout)}."
        " For a local registry instead: sudo apt-get install docker-registry busybox-static, then rerun."
    )
    # Without busybox there is no modelcar base to append to: the layout holds the model layer alone.
    return f"oci-layout:{layout}:demo", "scratch", False


def _only(root: Path, pattern: str) -> Path:
    return sorted(root.rglob(pattern))[-1]


def shown(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it (shorter to read), else absolute."""
    return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)


def _rounded(value: Any) -> Any:
    """``value`` with floats to 4 decimals: float32 inputs print as 5.099999904632568 otherwise."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    return value


def _next_steps(console: RunConsole, package: Path) -> None:
    """Three README commands that take the user past the demo."""
    steps = (
        (f"aiserving serve {shown(package)}", "serve the model yourself (docs/model-server.md)"),
        ("aiserving render examples/deployments/cpu-only.yaml", "your deployment config (docs/deploying.md)"),
        ("aiserving submit deploy-model --host KFP_URL", "the same run on Kubeflow (docs/pipelines.md)"),
    )
    for command, why in steps:
        console.say(f"Next        {command}   # {why}")


def run_demo(state_dir: Path, *, verbose: bool = False) -> Lineage:
    """Run the whole chain locally and return the deployed model's lineage.

    MLflow (demo model, alias champion) → ``deploy-model`` through the KFP local runner → image in a
    local registry or OCI layout → InferenceService rendered and CRD-validated → the package served
    by its runtime and one prediction → a summary of what was produced where. Standard output gets a
    short story; everything else (MLflow, the runner, the tasks) goes to ``demo.log`` in the run's folder.

    Args:
        state_dir: Where MLflow, the registry and the runs keep their state.
        verbose: Also stream everything the log gets to standard output.
    """
    state_dir = state_dir.absolute()
    run_root = state_dir / "kfp-local" / time.strftime("%Y%m%d-%H%M%S")
    with RunConsole(run_root / "demo.log", verbose=verbose) as console, contextlib.ExitStack() as stack:
        console.say(f"Log         {shown(console.log_path)} (MLflow, the KFP runner and every task, in full)")
        server = stack.enter_context(LocalMlflowServer(state_dir / "mlflow"))
        console.say(f"MLflow      {server.uri} (state in {shown(server.state_dir)})")
        version = register_demo_model(server.uri)
        uri = f"models:/{DEMO_MODEL}@{DEMO_ALIAS}"
        resolved = resolve_model(uri, RegistryConnection.from_settings(server.uri))
        console.say(f"Model       {uri} → version {resolved.version} (run {resolved.run_id})")
        image, base, insecure = image_target(stack, state_dir, console)
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
        console.say(
            f"Pipeline    deploy-model through the KFP local runner (target render), outputs in {shown(run_root)}"
        )
        run_locally("deploy-model", arguments, run_root, environment=environment, console=console)
        package = _only(run_root, "package-model/package/package.json").parent
        sent, received = predict_input_example(package, state_dir / "serve")
        console.say(f"Prediction  {_rounded(sent)} → {_rounded(received)} (Python wrapper, KServe V2 REST)")
        lineage = Lineage.read(_only(run_root, "resolve-model/model/lineage.json").parent)
        console.log(f"Lineage:\n{json.dumps(lineage.model_dump(mode='json'), indent=2)}\n")
        manifest = _only(run_root, "deploy-inference-service/manifest")
        storage = yaml.safe_load(manifest.read_text())["spec"]["predictor"]["model"]["storageUri"]
        report = _only(run_root, "deployment-report/report")
        _next_steps(console, package)
        console.say("Summary")
        console.say(f"  model        {lineage.name} v{version} ({lineage.content_digest})")
        console.say(f"  package      {shown(package)} (runtime python, verified against MLflow)")
        console.say(f"  image        {storage}")
        console.say(f"  manifest     {shown(manifest)} (validated against the KServe v0.20 CRD)")
        console.say(f"  report       {shown(report)} (Markdown, as the Kubeflow UI shows it)")
        console.say(f"  report page  {page_path(report).as_uri()}")
    return lineage
