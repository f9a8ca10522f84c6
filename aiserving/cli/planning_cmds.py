"""``aiserving size`` and ``aiserving plan-fleet``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aiserving.cli.mlflow_cmds import add_registry_arguments, connection_from


# The steps are imported in the handlers: sizing reads tensors with onnx/torch/tensorflow, planning loads OR-Tools.
def _size(args: argparse.Namespace) -> int:
    from aiserving.steps.gpu_sizing import size_model

    result = size_model(args.target, max_batch_size=args.max_batch_size, gpu=args.gpu, connection=connection_from(args))
    print(json.dumps(result.model_dump(mode="json"), indent=2) if args.json else result.table())
    return 0


def _plan_fleet(args: argparse.Namespace) -> int:
    from aiserving.steps.fleet_plan import plan_fleet_files

    plan = plan_fleet_files(Path(args.fleet), Path(args.inventory), Path(args.out), time_limit_s=args.time_limit)
    print(f"{plan.gpus_used} of {plan.gpus_total} GPUs (lower bound {plan.lower_bound}, {plan.solver}); see {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``size`` and ``plan-fleet`` to the CLI."""
    size = subparsers.add_parser(
        "size",
        help="estimate a model's GPU memory (weights, batch, runtime, CUDA context) and the smallest unit it fits",
        description="Reads the package's own tensors; see docs/gpu-planning.md. Exit 8 when no GPU fits.",
    )
    size.add_argument("target", metavar="PACKAGE_DIR|MODEL_URI")
    size.add_argument("--max-batch-size", type=int, help="largest batch (default: the package's max_batch_size)")
    size.add_argument("--gpu", metavar="PRODUCT", help="only this catalog product (e.g. A100-80GB, L4)")
    size.add_argument("--json", action="store_true", help="print the estimate as JSON")
    add_registry_arguments(size)
    size.set_defaults(handler=_size)

    plan = subparsers.add_parser(
        "plan-fleet",
        help="place a fleet of models on the cluster's GPU nodes with the fewest GPUs",
        description="Writes deploy-fleet input, per-model GPU settings, the mig-parted config, node labels and a "
        "report (Markdown + SVG) into --out; refuses a fleet that does not fit and writes nothing.",
    )
    plan.add_argument("fleet", metavar="FLEET.yaml")
    plan.add_argument("--inventory", required=True, metavar="INVENTORY.yaml")
    plan.add_argument("--out", required=True, help="new or empty directory for the plan's files")
    plan.add_argument("--time-limit", type=float, default=1.0, help="seconds CP-SAT may improve a small plan")
    plan.set_defaults(handler=_plan_fleet)
