"""``aiserving package`` and ``aiserving verify``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aiserving.cli.mlflow_cmds import add_registry_arguments, connection_from
from model_packaging.manifest import RUNTIMES
from model_packaging.support import supported_pairs


# package_model and verify_package are imported in the handlers: they import MLflow and the converters.
def _package(args: argparse.Namespace) -> int:
    from model_packaging import package_model

    manifest = package_model(
        args.model,
        args.runtime,
        Path(args.out),
        name=args.name,
        max_batch_size=args.max_batch_size,
        instance_kind=args.instance_kind,
        sklearn_to_onnx=args.sklearn_to_onnx,
        connection=connection_from(args),
    )
    print(json.dumps(manifest.model_dump(mode="json"), indent=2))
    return 0


def _verify(args: argparse.Namespace) -> int:
    from model_packaging.verify import RuntimeServices, verify_package

    with RuntimeServices() as services:
        report = verify_package(
            Path(args.package),
            services,
            samples=Path(args.samples) if args.samples else None,
            model=args.model,
            connection=connection_from(args),
        )
    print(report.table())
    return 0 if report.passed else 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``package`` and ``verify`` to the CLI."""
    package = subparsers.add_parser(
        "package",
        help="package an MLflow model for Triton, TorchServe, TF Serving or the Python wrapper",
        description=f"Supported flavor→runtime pairs: {supported_pairs()}.",
    )
    package.add_argument("model", metavar="MODEL_URI_OR_DIR", help="models:/ URI or MLflow model directory")
    package.add_argument("--runtime", required=True, choices=RUNTIMES)
    package.add_argument("--out", required=True, help="new or empty directory: the content of /mnt/models")
    package.add_argument("--name", help="model name in the runtime (default: registered or directory name)")
    package.add_argument(
        "--max-batch-size", type=int, help="0 turns batching off (default: 8 when the model has a batch dimension)"
    )
    package.add_argument("--instance-kind", choices=("gpu", "cpu"), default="gpu", help="Triton instance_group kind")
    package.add_argument(
        "--sklearn-to-onnx", action="store_true", help="convert sklearn models to ONNX (skl2onnx) for Triton"
    )
    add_registry_arguments(package)
    package.set_defaults(handler=_package)

    verify = subparsers.add_parser(
        "verify",
        help="load a package in its runtime where possible and compare predictions with MLflow pyfunc",
        description="Prints one row per check; exits 1 on a mismatch or a load failure. Skipped checks say why.",
    )
    verify.add_argument("package", metavar="DIR", help="a directory written by `aiserving package`")
    verify.add_argument("--samples", help="inputs to predict on: JSON object of arrays, one JSON array, or .npz")
    verify.add_argument("--model", help="reference MLflow model (default: the source recorded in package.json)")
    add_registry_arguments(verify)
    verify.set_defaults(handler=_verify)
