"""``make demo``: the main job on embedded defaults, on this machine only.

Starts a local MLflow server with state under ``./.aiserving/``, registers a
small demo classifier once (alias ``champion``), resolves the alias and
downloads the model with its lineage. A second run reuses what exists.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from aiserving.local.mlflow_server import LocalMlflowServer
from aiserving.mlflow_source import Lineage, RegistryConnection, download_model, resolve_model

DEMO_MODEL = "demo-iris-classifier"
DEMO_ALIAS = "champion"

_log = logging.getLogger(__name__)


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


def run_demo(state_dir: Path) -> Lineage:
    """Run the demo chain and return the downloaded model's lineage."""
    with LocalMlflowServer(state_dir / "mlflow") as server:
        print(f"MLflow server: {server.uri} (state in {server.state_dir})")
        version = register_demo_model(server.uri)
        connection = RegistryConnection.from_settings(server.uri)
        uri = f"models:/{DEMO_MODEL}@{DEMO_ALIAS}"
        resolved = resolve_model(uri, connection)
        print(f"Resolved {uri} → version {resolved.version} (run {resolved.run_id})")
        print(f"Flavors: {', '.join(sorted(resolved.flavors))}; {resolved.artifact_size_bytes} bytes of artifacts")
        out = state_dir / "models" / f"{DEMO_MODEL}-v{version}"
        if (out / "lineage.json").exists():
            lineage = Lineage.read(out)
            print(f"Reusing the download in {out}")
        else:
            lineage = download_model(uri, out, connection)
            print(f"Downloaded to {out}")
    print("Lineage:")
    print(json.dumps(lineage.model_dump(mode="json"), indent=2))
    return lineage
