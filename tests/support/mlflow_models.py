"""Log and register small real models of several flavors on a test MLflow server."""

from __future__ import annotations

from dataclasses import dataclass

import mlflow
import numpy as np
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient


@dataclass(frozen=True)
class RegisteredModel:
    """A model registered for the tests, with the version it got."""

    name: str
    version: str
    flavor: str


class ScaledSumModel(mlflow.pyfunc.PythonModel):  # type: ignore[misc]
    """A custom pyfunc: sums each row and multiplies by a factor."""

    def __init__(self, factor: float = 2.0) -> None:
        self.factor = factor

    def predict(self, context, model_input, params=None):
        values = np.asarray(model_input, dtype=np.float64)
        return values.sum(axis=1) * self.factor


def _iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    features, labels = load_iris(return_X_y=True)
    return features.astype(np.float32), labels


def log_sklearn(name: str) -> RegisteredModel:
    from sklearn.linear_model import LogisticRegression

    features, labels = _iris()
    model = LogisticRegression(max_iter=500).fit(features, labels)
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(
            model, name="model", input_example=features[:3], registered_model_name=name, pip_requirements=[]
        )
    return RegisteredModel(name, str(info.registered_model_version), "sklearn")


def log_pytorch(name: str) -> RegisteredModel:
    import torch

    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    example = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    with mlflow.start_run():
        info = mlflow.pytorch.log_model(
            network, name="model", input_example=example, registered_model_name=name, pip_requirements=[]
        )
    return RegisteredModel(name, str(info.registered_model_version), "pytorch")


def log_onnx(name: str) -> RegisteredModel:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    features, _ = _iris()
    regression = LinearRegression().fit(features[:, :3], features[:, 3])
    onnx_model = to_onnx(regression, features[:1, :3], target_opset=17)
    example = {"X": features[:2, :3]}
    signature = infer_signature(example, {"variable": regression.predict(features[:2, :3]).reshape(-1, 1)})
    with mlflow.start_run():
        info = mlflow.onnx.log_model(
            onnx_model,
            name="model",
            input_example=example,
            signature=signature,
            registered_model_name=name,
            pip_requirements=[],
        )
    return RegisteredModel(name, str(info.registered_model_version), "onnx")


def log_pyfunc(name: str, factor: float = 2.0) -> RegisteredModel:
    example = np.ones((2, 3), dtype=np.float64)
    with mlflow.start_run():
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=ScaledSumModel(factor),
            input_example=example,
            registered_model_name=name,
            pip_requirements=[],
        )
    return RegisteredModel(name, str(info.registered_model_version), "python_function")


def register_flavors(tracking_uri: str) -> dict[str, RegisteredModel]:
    """Register one model per flavor; keyed by flavor."""
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_experiment("aiserving-tests")
    models = {
        "sklearn": log_sklearn("sk-iris"),
        "pytorch": log_pytorch("torch-mlp"),
        "onnx": log_onnx("onnx-regressor"),
        "pyfunc": log_pyfunc("custom-scaled-sum"),
    }
    MlflowClient(tracking_uri).set_registered_model_alias("sk-iris", "champion", models["sklearn"].version)
    return models
