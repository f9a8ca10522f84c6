"""``aiserving verify``: load a package in its runtime where this machine can, and compare with MLflow."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.models import Model

from mlflow_source import RegistryConnection
from mlflow_source.metadata import signature_info
from model_packaging.digest import package_digest
from model_packaging.manifest import PackageManifest
from model_packaging.signature_inputs import inputs_from_signature
from model_packaging.torchserve import MODEL_STORE
from model_packaging.triton import model_file
from model_packaging.verify import runners, wrapper_server
from model_packaging.verify.compare import compare_output
from model_packaging.verify.reference import predict_with_mlflow, reference_model
from model_packaging.verify.report import VerifyReport
from model_packaging.verify.samples import named_arrays, read_samples, runtime_inputs
from model_packaging.verify.services import RuntimeServices
from model_packaging.verify.triton_validator import TritonValidator
from model_packaging.verify.v2_client import v2_infer
from serving_core.errors import AiServingError, InvalidInputError

Inputs = dict[str, np.ndarray]
Outputs = dict[str, np.ndarray] | None
RuntimeCheck = Callable[[Path, PackageManifest, Inputs, RuntimeServices, VerifyReport], Outputs]


def _no_gpu_reason() -> str | None:
    return "no GPU on this machine (no nvidia-smi)" if shutil.which("nvidia-smi") is None else None


def _guarded(report: VerifyReport, check: str, run: Callable[[], Outputs], detail: str) -> Outputs:
    """Run one load-and-predict step; any failure of the runtime is a failed check, not a crash."""
    try:
        outputs = run()
    except Exception as error:  # a runtime that cannot load or predict fails in many ways
        report.add(check, "failed", f"{type(error).__name__}: {error}")
        return None
    report.add(check, "passed", detail)
    return outputs


def _check_triton(
    package: Path, manifest: PackageManifest, inputs: Inputs, services: RuntimeServices, report: VerifyReport
) -> Outputs:
    validator = services.triton()
    if isinstance(validator, TritonValidator):
        result = validator.validate(package / manifest.model_name)
        report.checks.append(result)
    else:
        report.add("config.pbtxt parsed by tritonserver", "skipped", validator)
    path = package / model_file(manifest.model_name, manifest.source_flavor)
    report.add(
        "model loaded by Triton itself",
        "skipped",
        "the tritonserver here (nvidia-pytriton) has only the python backend; loaded in the backend's library below",
    )
    if manifest.instance_kind == "gpu" and (reason := _no_gpu_reason()):
        report.add("KIND_GPU instance", "skipped", reason)
    if path.suffix == ".onnx":
        version = metadata.version("onnxruntime")
        return _guarded(
            report,
            "names, types, dims and predictions in onnxruntime",
            lambda: runners.run_onnx(path, manifest, inputs),
            f"onnxruntime {version} (Triton's onnxruntime backend library)",
        )
    if path.suffix == ".pt":
        return _guarded(
            report,
            "TorchScript loaded by libtorch",
            lambda: runners.run_torchscript(path, manifest, inputs),
            f"torch.jit.load with torch {metadata.version('torch')} (what Triton's pytorch backend runs)",
        )
    return _guarded(
        report,
        "SavedModel loaded by TensorFlow",
        lambda: runners.run_savedmodel(path, manifest, inputs),
        f"tensorflow-cpu {metadata.version('tensorflow-cpu')}, serving_default signature",
    )


def _check_torchserve(
    package: Path, manifest: PackageManifest, inputs: Inputs, services: RuntimeServices, report: VerifyReport
) -> Outputs:
    server = services.torchserve()
    if isinstance(server, str):
        report.add("served by TorchServe", "skipped", server)
        return None
    mar = package / MODEL_STORE / f"{manifest.model_name}.mar"

    def serve() -> Outputs:
        server.register(mar, manifest.model_name)
        try:
            return v2_infer(server.infer_url(manifest.model_name), inputs)
        finally:
            server.unregister(manifest.model_name)

    detail = f"TorchServe {metadata.version('torchserve')}: {mar.name} answered POST /v2/models/NAME/infer"
    return _guarded(report, "served by TorchServe", serve, detail)


def _check_tfserving(
    package: Path, manifest: PackageManifest, inputs: Inputs, services: RuntimeServices, report: VerifyReport
) -> Outputs:
    reason = "no tensorflow_model_server binary on this machine"
    if shutil.which("tensorflow_model_server") is not None:
        reason = "verify does not start TF Serving; the SavedModel is checked in TensorFlow instead"
    report.add("served by TF Serving", "skipped", reason)
    return _guarded(
        report,
        "SavedModel 1/ loaded by TensorFlow",
        lambda: runners.run_savedmodel(package / "1", manifest, inputs),
        f"tensorflow-cpu {metadata.version('tensorflow-cpu')}, serving_default signature",
    )


def _check_python(
    package: Path, manifest: PackageManifest, inputs: Inputs, services: RuntimeServices, report: VerifyReport
) -> Outputs:
    if reason := wrapper_server.missing_reason():
        report.add("served by model_wrappers (KServe ModelServer)", "skipped", reason)
        return None
    if manifest.instance_kind == "gpu" and (gpu_reason := _no_gpu_reason()):
        report.add("CUDA device", "skipped", f"{gpu_reason}; served on CPU")

    def serve() -> Outputs:
        log = services.work_dir / f"wrapper-{manifest.model_name}.log"
        with wrapper_server.WrapperServer(package, manifest.model_name, log) as server:
            return v2_infer(server.infer_url, inputs)

    return _guarded(report, "served by model_wrappers (KServe ModelServer)", serve, "V2 REST infer")


CHECKS: dict[str, RuntimeCheck] = {
    "triton": _check_triton,
    "torchserve": _check_torchserve,
    "tfserving": _check_tfserving,
    "python": _check_python,
}


def _load_example(reference: Path, samples: Path | None) -> tuple[Any, str]:
    """The samples, else the MLflow input example, else inputs made from the signature.

    Raises:
        InvalidInputError: none of the three is there to predict on.
    """
    if samples is not None:
        return read_samples(samples), f"samples {samples.name}"
    mlmodel = Model.load(str(reference / "MLmodel"))
    example = mlmodel.load_input_example(str(reference))
    if example is not None:
        return example, "the MLflow input example"
    signature = signature_info(mlmodel.signature)
    if signature is None:
        raise InvalidInputError(
            f"model {reference} has no input example and no signature to verify with",
            hint="pass --samples FILE (JSON object of input arrays, or .npz)",
        )
    # MLflow saves no example for a multi-input .pt2; made-up rows still compare runtime and MLflow.
    return inputs_from_signature(signature, model=str(reference)), "inputs made from the signature (no input example)"


def verify_package(
    package: Path,
    services: RuntimeServices,
    *,
    samples: Path | None = None,
    model: str | None = None,
    connection: RegistryConnection | None = None,
) -> VerifyReport:
    """Check the package digest, then predict in the runtime and compare with MLflow's own prediction.

    Raises:
        InvalidInputError: no package.json, no reference model, no inputs to verify with.
        ConflictError: the reference model is not the one the package was made from.
    """
    package = package.absolute()
    manifest = PackageManifest.read(package)
    report = VerifyReport(str(package), manifest.runtime)
    digest = package_digest(package)
    if digest == manifest.package_digest:
        report.add("package digest", "passed", digest)
    else:
        report.add("package digest", "failed", f"{digest} but package.json says {manifest.package_digest}")
    with reference_model(package, manifest, model, connection) as reference:
        example, where = _load_example(reference, samples)
        arrays = named_arrays(example, manifest)
        try:
            expected, reference_check = predict_with_mlflow(reference, arrays, manifest)
        except AiServingError:
            raise
        except Exception as error:  # MLflow flavors raise plain exceptions on bad input
            raise InvalidInputError(
                f"MLflow could not predict on {where}: {error}", hint="check the samples against the signature"
            ) from error
    rows = len(next(iter(arrays.values())))
    report.add(reference_check, "passed", f"{rows} rows from {where}")
    actual = CHECKS[manifest.runtime](package, manifest, runtime_inputs(arrays, manifest), services, report)
    if actual is None:
        return report
    compared = [name for name in expected if name in actual]
    if not compared:
        report.add("outputs", "failed", f"runtime gave {sorted(actual)}, MLflow gave {sorted(expected)}")
    for name in compared:
        report.checks.append(compare_output(name, expected[name], actual[name]))
    return report
