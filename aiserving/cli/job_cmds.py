"""``aiserving job run|status|cancel``: batch inference jobs (docs/batch-jobs.md)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def _parameters(args: argparse.Namespace) -> Any:
    """The job's parameters from the options of the same names."""
    from dataclasses import fields

    from aiserving.jobs import JobParameters

    return JobParameters(**{field.name: getattr(args, field.name) for field in fields(JobParameters)})


def _run(args: argparse.Namespace) -> int:
    from aiserving import jobs
    from batch_jobs.progress import ProgressBar

    bar: list[ProgressBar] = []

    def progress(done: int, errors: int, concurrency: int, total: int) -> None:
        if not bar:
            bar.append(ProgressBar(total))
        bar[0].update(done, errors, concurrency, final=done >= total)

    handle = jobs.run(
        _parameters(args), host=args.host, experiment=args.experiment, kfp_namespace=args.kfp_namespace,
        on_progress=None if args.no_progress else progress,
    )  # fmt: skip
    print(json.dumps(handle.as_dict(), indent=2))
    return 0


def _status(args: argparse.Namespace) -> int:
    from aiserving import jobs

    state = jobs.status(args.output_uri, run_id=args.run_id, host=args.host, kfp_namespace=args.kfp_namespace)
    print(json.dumps(state, indent=2))
    return 0


def _cancel(args: argparse.Namespace) -> int:
    from aiserving import jobs

    print(json.dumps(jobs.cancel(args.output_uri, run_id=args.run_id, host=args.host,
                                 kfp_namespace=args.kfp_namespace), indent=2))  # fmt: skip
    return 0


def _add_kfp_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", help="Kubeflow Pipelines API URL (token in $KFP_TOKEN)")
    parser.add_argument("--kfp-namespace", help="Kubeflow profile namespace (multi-user installs)")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``job run``, ``job status`` and ``job cancel`` to the CLI."""
    job = subparsers.add_parser("job", help="batch inference jobs: run, status, cancel (docs/batch-jobs.md)")
    commands = job.add_subparsers(dest="job_command", required=True, metavar="JOB_COMMAND")

    run = commands.add_parser(
        "run",
        help="run a batch job here (progress bar on stderr), or submit it to Kubeflow Pipelines with --host",
        description="Shard the input, call the model with adaptive concurrency, write one result file per "
        "shard; re-running the same command resumes after the finished shards.",
    )
    run.add_argument("input_uri", metavar="INPUT", help="s3://bucket/prefix or a path: JSONL, CSV or Parquet files")
    run.add_argument("output_uri", metavar="OUTPUT", help="s3://bucket/prefix or a path: empty, or this job's")
    model = run.add_argument_group("model (one of)")
    model.add_argument("--endpoint-url", default="", help="base URL of a V2 endpoint (http://host:port)")
    model.add_argument("--inference-service", default="", help="InferenceService to look up (kubeconfig)")
    model.add_argument("--model-uri", default="", help="model folder (path or s3://) to serve for the job")
    run.add_argument("--model-name", default="", help="V2 model name (default: the InferenceService's name)")
    run.add_argument("--namespace", default="ai-serving", help="namespace of the InferenceService")
    run.add_argument("--input-format", default="auto", choices=["auto", "jsonl", "csv", "parquet"])
    run.add_argument("--shard-size", type=int, default=10000, help="items per shard / output file (10000)")
    run.add_argument("--rows-per-request", type=int, default=32, help="items per V2 request (32)")
    run.add_argument("--max-concurrency", type=int, default=64, help="most requests in flight (64)")
    run.add_argument(
        "--latency-tolerance", type=float, default=2.0, help="back off above this multiple of unloaded latency (2)"
    )
    run.add_argument("--error-budget", type=float, default=0.001, help="fraction of items that may fail (0.001)")
    run.add_argument("--experiment", default="Default", help="with --host: experiment to file the run under")
    run.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    _add_kfp_arguments(run)
    run.set_defaults(handler=_run)

    for name, handler, text in (
        ("status", _status, "where a job stands (from its output location; with --run-id also the KFP run)"),
        ("cancel", _cancel, "stop a job: running shards stop, finished ones are kept for a re-run"),
    ):
        parser = commands.add_parser(name, help=text)
        parser.add_argument("output_uri", metavar="OUTPUT", nargs="?", default="", help="the job's output URI")
        parser.add_argument("--run-id", default="", help="KFP run ID (with --host)")
        _add_kfp_arguments(parser)
        parser.set_defaults(handler=handler)
