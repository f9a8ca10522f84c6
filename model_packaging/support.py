"""Which flavor goes to which runtime, and how it is converted on the way."""

from __future__ import annotations

from dataclasses import dataclass

from model_packaging.manifest import Runtime
from serving_core.errors import UnsupportedError


@dataclass(frozen=True)
class Conversion:
    """One supported flavor x runtime pair."""

    runtime: Runtime
    flavor: str
    how: str


# Order matters: the first pair whose flavor the model has wins.
SUPPORTED: tuple[Conversion, ...] = (
    Conversion("triton", "onnx", "model.onnx copied; IO from the ONNX graph"),
    Conversion("triton", "pytorch", "TorchScript traced (scripted as fallback) with the input example"),
    Conversion("triton", "tensorflow", "SavedModel (tf2model copied, Keras model exported)"),
    Conversion("triton", "keras", "Keras model exported as SavedModel"),
    Conversion("triton", "sklearn", "skl2onnx with zipmap=False (only with --sklearn-to-onnx)"),
    Conversion("torchserve", "pytorch", "TorchScript + KServe V2 handler archived into a .mar"),
    Conversion("tfserving", "tensorflow", "SavedModel in version directory 1/"),
    Conversion("tfserving", "keras", "Keras model exported as SavedModel in 1/"),
    Conversion("python", "python_function", "MLflow model directory as is, plus wrapper-settings.json"),
)


def supported_pairs() -> str:
    """All supported pairs as ``flavor→runtime`` for error messages."""
    return ", ".join(f"{pair.flavor}→{pair.runtime}" for pair in SUPPORTED)


def select_conversion(runtime: Runtime, flavors: set[str], *, sklearn_to_onnx: bool) -> Conversion:
    """Pick how a model with ``flavors`` is packaged for ``runtime``.

    Raises:
        UnsupportedError: no flavor of the model is supported by ``runtime``.
    """
    for pair in SUPPORTED:
        if pair.runtime != runtime or pair.flavor not in flavors:
            continue
        if pair.flavor == "sklearn" and not sklearn_to_onnx:
            raise UnsupportedError(
                "an sklearn model goes to Triton only through an ONNX conversion",
                hint="pass --sklearn-to-onnx to convert it with skl2onnx, or use --runtime python",
            )
        return pair
    native = sorted(flavors - {"python_function"}) or sorted(flavors)
    raise UnsupportedError(
        f"runtime {runtime!r} cannot serve a model with flavor(s) {', '.join(native)}",
        hint=f"supported flavor→runtime pairs: {supported_pairs()}",
    )
