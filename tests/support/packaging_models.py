"""Small real MLflow models saved as local directories for the packaging tests."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
from mlflow.models import infer_signature

from tests.support.mlflow_models import ScaledSumModel

RNG = np.random.default_rng(7)


def save_pytorch_mlp(path: Path) -> Path:
    """Batch x 4 → batch x 3, logged as MLflow 3's default torch.export ``.pt2``."""
    import torch

    torch.manual_seed(0)
    network = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    example = RNG.normal(size=(3, 4)).astype(np.float32)
    mlflow.pytorch.save_model(network, str(path), input_example=example, pip_requirements=[])
    return path


def save_pytorch_cnn(path: Path) -> Path:
    """Batch x 1 x 8 x 8 images → batch x 2 scores."""
    import torch

    torch.manual_seed(1)
    network = torch.nn.Sequential(
        torch.nn.Conv2d(1, 4, kernel_size=3),
        torch.nn.ReLU(),
        torch.nn.Flatten(),
        torch.nn.Linear(4 * 6 * 6, 2),
    )
    example = RNG.normal(size=(2, 1, 8, 8)).astype(np.float32)
    mlflow.pytorch.save_model(network, str(path), input_example=example, pip_requirements=[])
    return path


def save_pytorch_two_inputs(path: Path) -> Path:
    """forward(user, item): user (batch x 3) and item (batch x 2) → batch x 2, saved as ``.pt2``.

    MLflow takes a tuple input example for this, saves no example and gives the model no pyfunc flavor.
    """
    import torch
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Schema, TensorSpec

    class TwoTower(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.user = torch.nn.Linear(3, 4)
            self.item = torch.nn.Linear(2, 4)
            self.head = torch.nn.Linear(4, 2)

        def forward(self, user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
            return self.head(torch.relu(self.user(user) + self.item(item)))

    torch.manual_seed(2)
    example = (RNG.normal(size=(3, 3)).astype(np.float32), RNG.normal(size=(3, 2)).astype(np.float32))
    float32 = np.dtype(np.float32)
    signature = ModelSignature(
        inputs=Schema([TensorSpec(float32, (-1, 3), "user"), TensorSpec(float32, (-1, 2), "item")]),
        outputs=Schema([TensorSpec(float32, (-1, 2), "score")]),
    )
    mlflow.pytorch.save_model(TwoTower(), str(path), input_example=example, signature=signature, pip_requirements=[])
    return path


def two_input_samples(rows: int = 4) -> dict[str, list[list[float]]]:
    """Samples for ``pytorch-two-inputs`` (it has no saved input example), by MLflow input name."""
    rng = np.random.default_rng(rows)
    return {"user": rng.normal(size=(rows, 3)).tolist(), "item": rng.normal(size=(rows, 2)).tolist()}


def save_pytorch_columns(path: Path) -> Path:
    """A network logged from a DataFrame with int64, float64 and float32 columns (pickled: .pt2 needs tensors)."""
    import pandas as pd
    import torch

    torch.manual_seed(3)
    network = torch.nn.Sequential(torch.nn.Linear(3, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2))
    frame = pd.DataFrame(
        {
            "age": np.array([31, 45, 27, 60], dtype=np.int64),
            "income": RNG.normal(50.0, 10.0, size=4),
            "score": RNG.random(size=4).astype(np.float32),
        }
    )
    mlflow.pytorch.save_model(
        network, str(path), input_example=frame, serialization_format="pickle", pip_requirements=[]
    )
    return path


def save_pytorch_text_column(path: Path) -> Path:
    """A network logged from a DataFrame with a text column, which MLflow's float32 cast cannot take."""
    import pandas as pd
    import torch

    frame = pd.DataFrame({"city": ["Lyon", "Oslo"], "rooms": [2.0, 3.0]})
    signature = infer_signature(frame, np.zeros((2, 1), dtype=np.float32))
    mlflow.pytorch.save_model(
        torch.nn.Linear(2, 1), str(path), signature=signature, serialization_format="pickle", pip_requirements=[]
    )
    return path


def save_pytorch_without_signature(path: Path) -> Path:
    import torch

    mlflow.pytorch.save_model(torch.nn.Linear(2, 1), str(path), pip_requirements=[], serialization_format="pickle")
    return path


def save_onnx_regressor(path: Path) -> Path:
    """skl2onnx LinearRegression: X (batch x 3) → variable (batch x 1)."""
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    features = RNG.normal(size=(40, 3)).astype(np.float32)
    regression = LinearRegression().fit(features, features @ np.array([1.0, -2.0, 0.5], dtype=np.float32))
    onnx_model = to_onnx(regression, features[:1], target_opset=17)
    example = {"X": features[:4]}
    signature = infer_signature(example, {"variable": regression.predict(features[:4]).reshape(-1, 1)})
    mlflow.onnx.save_model(onnx_model, str(path), input_example=example, signature=signature, pip_requirements=[])
    return path


def save_onnx_two_inputs(path: Path) -> Path:
    """A hand-built graph with two inputs: y = 2 * a + b, a and b batch x 3."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["a", "two"], ["scaled"]),
            helper.make_node("Add", ["scaled", "b"], ["y"]),
        ],
        "two_inputs",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 3]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
        initializer=[helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    example = {"a": RNG.normal(size=(2, 3)).astype(np.float32), "b": RNG.normal(size=(2, 3)).astype(np.float32)}
    signature = infer_signature(example, {"y": 2 * example["a"] + example["b"]})
    mlflow.onnx.save_model(model, str(path), input_example=example, signature=signature, pip_requirements=[])
    return path


def save_sklearn_iris(path: Path) -> Path:
    """LogisticRegression on iris: batch x 4 float32 → class labels."""
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    features, labels = load_iris(return_X_y=True)
    features = features.astype(np.float32)
    model = LogisticRegression(max_iter=500).fit(features, labels)
    mlflow.sklearn.save_model(model, str(path), input_example=features[::30], pip_requirements=[])
    return path


def save_sklearn_dataframe(path: Path) -> Path:
    """LinearRegression trained on a DataFrame: a column signature (age, income: double)."""
    import pandas as pd
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"age": RNG.normal(size=30), "income": RNG.normal(size=30)})
    model = LinearRegression().fit(frame, 2 * frame["age"] - frame["income"])
    mlflow.sklearn.save_model(model, str(path), input_example=frame.head(4), pip_requirements=[])
    return path


def save_keras_two_inputs(path: Path) -> Path:
    """Keras functional model: a (batch x 3) and b (batch x 2) → batch x 2."""
    import keras

    keras.utils.set_random_seed(3)
    input_a = keras.Input(shape=(3,), name="a")
    input_b = keras.Input(shape=(2,), name="b")
    joined = keras.layers.Concatenate()([input_a, input_b])
    model = keras.Model([input_a, input_b], keras.layers.Dense(2, name="score")(joined))
    example = {"a": RNG.normal(size=(3, 3)).astype(np.float32), "b": RNG.normal(size=(3, 2)).astype(np.float32)}
    mlflow.tensorflow.save_model(model, str(path), input_example=example, pip_requirements=[])
    return path


def save_keras_sequential(path: Path) -> Path:
    """Keras sequential model with the ``mlflow.keras`` flavor: batch x 5 → batch x 1."""
    import keras

    keras.utils.set_random_seed(4)
    model = keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(4, activation="relu"), keras.layers.Dense(1)])
    example = RNG.normal(size=(4, 5)).astype(np.float32)
    signature = infer_signature(example, model.predict(example, verbose=0))
    # mlflow.keras.save_model writes the input example before it creates the directory.
    path.mkdir(parents=True)
    mlflow.keras.save_model(model, str(path), input_example=example, signature=signature, pip_requirements=[])
    return path


def save_tf_module(path: Path) -> Path:
    """A plain ``tf.Module`` (MLflow stores it as the ``tf2model/`` SavedModel): x (batch x 3) → batch x 1."""
    import tensorflow as tf

    class WeightedSum(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weights = tf.Variable([[1.0], [-2.0], [0.5]])

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def __call__(self, x):
            return tf.matmul(x, self.weights)

    module = WeightedSum()
    example = RNG.normal(size=(3, 3)).astype(np.float32)
    signature = infer_signature(example, module(example).numpy())
    mlflow.tensorflow.save_model(module, str(path), input_example=example, signature=signature, pip_requirements=[])
    return path


def save_pyfunc_scaled_sum(path: Path) -> Path:
    example = RNG.normal(size=(3, 3))
    mlflow.pyfunc.save_model(str(path), python_model=ScaledSumModel(3.0), input_example=example, pip_requirements=[])
    return path


def save_pyfunc_with_datetime(path: Path) -> Path:
    """A column signature with a datetime column, which no runtime has a type for."""
    import pandas as pd

    example = pd.DataFrame({"when": pd.to_datetime(["2024-01-01", "2024-01-02"]), "x": [1.0, 2.0]})
    signature = infer_signature(example, np.array([1.0, 2.0]))
    mlflow.pyfunc.save_model(str(path), python_model=ScaledSumModel(1.0), signature=signature, pip_requirements=[])
    return path


SAVERS = {
    "pytorch-mlp": save_pytorch_mlp,
    "pytorch-cnn": save_pytorch_cnn,
    "pytorch-two-inputs": save_pytorch_two_inputs,
    "pytorch-columns": save_pytorch_columns,
    "pytorch-text-column": save_pytorch_text_column,
    "pytorch-nosig": save_pytorch_without_signature,
    "onnx-regressor": save_onnx_regressor,
    "onnx-two-inputs": save_onnx_two_inputs,
    "sklearn-iris": save_sklearn_iris,
    "sklearn-dataframe": save_sklearn_dataframe,
    "keras-two-inputs": save_keras_two_inputs,
    "keras-sequential": save_keras_sequential,
    "tf-module": save_tf_module,
    "pyfunc-scaled-sum": save_pyfunc_scaled_sum,
    "pyfunc-datetime": save_pyfunc_with_datetime,
}


def save_all(root: Path) -> dict[str, Path]:
    """Save every model under ``root``; keyed like ``SAVERS``."""
    return {key: saver(root / key) for key, saver in SAVERS.items()}
