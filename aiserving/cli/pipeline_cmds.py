"""``aiserving compile``, ``run``, ``submit`` and ``schedule``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from aiserving.pipeline_ops.catalog import compiled_path
from aiserving.pipeline_ops.compile import compile_all, pipeline_inputs
from aiserving.pipeline_ops.local_run import run_locally
from aiserving.pipeline_ops.params import parse_params
from aiserving.pipeline_ops.reference_docs import update_docs
from aiserving.pipeline_ops.run_console import RunConsole
from aiserving.pipeline_ops.triggers import schedule_run, submit_run


def _arguments(args: argparse.Namespace) -> dict[str, object]:
    return parse_params(args.param, pipeline_inputs(compiled_path(args.pipeline)))


def _compile(args: argparse.Namespace) -> int:
    written = compile_all(Path(args.out), args.components_image)
    if args.docs:
        update_docs(Path(args.docs))
    print(json.dumps({"compiled": [str(path) for path in written]}, indent=2))
    return 0


def _run(args: argparse.Namespace) -> int:
    arguments = _arguments(args)
    if args.target is not None:
        arguments["target"] = args.target
    pipeline_root = Path(args.pipeline_root)
    log_path = pipeline_root / "logs" / f"{Path(args.pipeline).stem}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    with RunConsole(log_path, verbose=args.verbose) as console:
        console.say(f"{args.pipeline} through the KFP local runner; full log: {console.log_path}")
        summary = run_locally(args.pipeline, arguments, pipeline_root, console=console)
        run_folder = Path(summary["run_folder"])
        console.say(f"outputs      {run_folder}")
        for page in sorted(run_folder.glob("*/*.html")):
            console.say(f"report page  {page.absolute().as_uri()}")
    return 0


def _submit(args: argparse.Namespace) -> int:
    run = submit_run(args.pipeline, args.host, _arguments(args), args.experiment, args.run_name, args.namespace)
    print(json.dumps(run.model_dump(), indent=2))
    return 0


def _schedule(args: argparse.Namespace) -> int:
    scheduled = schedule_run(
        args.pipeline, args.host, args.cron, _arguments(args), args.experiment, args.name, args.namespace
    )
    print(json.dumps(scheduled.model_dump(), indent=2))
    return 0


def _add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pipeline", metavar="PIPELINE", help="pipeline name (e.g. deploy-model) or compiled YAML path")
    parser.add_argument(
        "--param", action="append", default=[], metavar="KEY=VALUE", help="pipeline argument; repeat as needed"
    )


def _add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", required=True, help="Kubeflow Pipelines API URL (token in $KFP_TOKEN)")
    parser.add_argument("--experiment", default="Default", help="experiment to file the run under")
    parser.add_argument("--namespace", help="Kubeflow profile namespace (multi-user installs)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the pipeline commands to the CLI."""
    compile_parser = subparsers.add_parser("compile", help="compile every pipeline to YAML")
    # Relative to where it runs: an installed package must not write into its own site-packages.
    compile_parser.add_argument(
        "--out", default="pipelines/compiled", help="directory for NAME.yaml files (default: ./pipelines/compiled)"
    )
    compile_parser.add_argument("--components-image", help="image the components run in (default: ours, this version)")
    compile_parser.add_argument(
        "--docs", metavar="MARKDOWN", help="also regenerate the parameter reference in this file"
    )
    compile_parser.set_defaults(handler=_compile)

    run = subparsers.add_parser("run", help="run a pipeline locally through the KFP local runner")
    _add_pipeline_arguments(run)
    run.add_argument("--local", action="store_true", required=True, help="run on this machine (the only mode)")
    run.add_argument("--target", choices=("render", "cluster"), help="deploy steps: render manifests or apply them")
    run.add_argument("--pipeline-root", default=".aiserving/kfp-local", help="where task outputs and logs are written")
    run.add_argument(
        "--verbose", action="store_true", help="stream the runner's own logs too (always kept in PIPELINE_ROOT/logs/)"
    )
    run.set_defaults(handler=_run)

    submit = subparsers.add_parser("submit", help="start a run on a Kubeflow Pipelines server")
    _add_pipeline_arguments(submit)
    _add_server_arguments(submit)
    submit.add_argument("--run-name", help="display name of the run")
    submit.set_defaults(handler=_submit)

    schedule = subparsers.add_parser("schedule", help="create a recurring run (max concurrency 1, no catch-up)")
    _add_pipeline_arguments(schedule)
    _add_server_arguments(schedule)
    schedule.add_argument("--cron", required=True, help="cron expression, 5 fields or KFP's 6 (seconds first)")
    schedule.add_argument("--name", help="display name of the recurring run")
    schedule.set_defaults(handler=_schedule)
