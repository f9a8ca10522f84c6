"""The ``aiserving`` command line: one sub-command module per feature.

Each feature module exposes ``register(subparsers)`` that adds its parser and
sets ``handler`` to a function taking the parsed namespace and returning an
exit code. Errors from :mod:`serving_core.errors` become one clear message on
stderr and the error's exit code; no traceback for expected failures.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from aiserving import __version__
from aiserving.cli import (
    demo_cmd,
    image_cmds,
    isvc_cmds,
    job_cmds,
    mlflow_cmds,
    packaging_cmds,
    pipeline_cmds,
    planning_cmds,
    rollout_cmds,
    serve_cmds,
)
from serving_core.errors import AiServingError

# In the order of the chain: registry → package → image → serve → deploy → plan → pipelines → jobs.
FEATURE_MODULES = (
    mlflow_cmds,
    packaging_cmds,
    image_cmds,
    serve_cmds,
    isvc_cmds,
    rollout_cmds,
    planning_cmds,
    pipeline_cmds,
    job_cmds,
    demo_cmd,
)


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser with every feature's sub-commands."""
    parser = argparse.ArgumentParser(
        prog="aiserving",
        description="Take a model from the MLflow registry to a GPU-backed KServe endpoint.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in FEATURE_MODULES:
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # MLflow's per-file progress bars drown the JSON our commands print.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        exit_code: int = args.handler(args)
    except AiServingError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return exit_code
