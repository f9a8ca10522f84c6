"""The wrapper's command line, shared by ``python -m model_wrappers`` and ``aiserving serve``."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from serving_core.errors import InvalidInputError

DEFAULT_MODEL_DIR = Path("/mnt/models")
DEFAULT_HTTP_PORT = 8080
DEFAULT_MAX_BATCH_SIZE = 1024
DEFAULT_MAX_LATENCY_MS = 5.0
DEFAULT_LATENCY_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class ServerSettings:
    """Everything the server needs to start.

    Attributes:
        model_dir: the directory holding ``MLmodel``.
        model_name: the name in request paths (``/v2/models/NAME/infer``).
        http_port: the REST port (V1, V2, ``/metrics``); 0 binds a free port.
        grpc_port: the V2 gRPC port (0 binds a free port); ``None`` serves no gRPC.
        max_batch_size: most rows in one predict call; 1 turns batching off.
        max_latency_ms: longest a request waits for others to join its batch.
        latency_buckets: the request-latency histogram's bucket bounds, in seconds.
        grace_period_s: how long shutdown waits for in-flight requests.
        port_file: where to write the bound ports as JSON ``{"http": N, "grpc": N or null}`` once
            every port listens; ``None`` writes none.
    """

    model_dir: Path = DEFAULT_MODEL_DIR
    model_name: str = "model"
    http_port: int = DEFAULT_HTTP_PORT
    grpc_port: int | None = None
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE
    max_latency_ms: float = DEFAULT_MAX_LATENCY_MS
    latency_buckets: tuple[float, ...] = DEFAULT_LATENCY_BUCKETS
    grace_period_s: int = 30
    port_file: Path | None = None


def _buckets(text: str) -> tuple[float, ...]:
    try:
        buckets = tuple(sorted(float(item) for item in text.split(",") if item.strip()))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of seconds") from error
    if not buckets or buckets[0] <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: give at least one positive bucket bound in seconds")
    return buckets


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the serving flags; DIR may be given as a positional or as ``--model-dir``."""
    parser.add_argument("model_dir_positional", nargs="?", metavar="DIR", help="directory that holds MLmodel")
    parser.add_argument("--model-dir", help=f"directory that holds MLmodel (default {DEFAULT_MODEL_DIR})")
    parser.add_argument("--model-name", default="model", help="name in request paths (default: model)")
    parser.add_argument(
        "--port",
        "--http-port",
        dest="http_port",
        type=int,
        default=DEFAULT_HTTP_PORT,
        help="REST port; 0 binds a free one (default 8080)",
    )
    parser.add_argument("--grpc-port", type=int, help="V2 gRPC port; 0 binds a free one (default: no gRPC)")
    parser.add_argument(
        "--port-file",
        metavar="PATH",
        help='once listening, write the bound ports to PATH as JSON {"http": N, "grpc": N or null}',
    )
    parser.add_argument(
        "--max-batch-size",
        type=int,
        default=DEFAULT_MAX_BATCH_SIZE,
        help=f"most rows per predict call; 1 turns batching off (default {DEFAULT_MAX_BATCH_SIZE})",
    )
    parser.add_argument(
        "--max-latency-ms",
        type=float,
        default=DEFAULT_MAX_LATENCY_MS,
        help=f"longest a request waits for others to join its batch (default {DEFAULT_MAX_LATENCY_MS:g})",
    )
    parser.add_argument(
        "--latency-buckets",
        type=_buckets,
        default=DEFAULT_LATENCY_BUCKETS,
        help="request-latency histogram bounds in seconds, comma-separated",
    )
    parser.add_argument(
        "--grace-period", type=int, default=30, help="seconds shutdown waits for in-flight requests (default 30)"
    )


def settings_from_args(args: argparse.Namespace) -> ServerSettings:
    """Validate the parsed flags.

    Raises:
        InvalidInputError: two different model directories, a size, latency or port out of range, or a
            port file in a directory that does not exist.
    """
    if args.model_dir and args.model_dir_positional and args.model_dir != args.model_dir_positional:
        raise InvalidInputError(
            f"two model directories given: {args.model_dir_positional} and --model-dir {args.model_dir}",
            hint="give the directory once",
        )
    model_dir = Path(args.model_dir or args.model_dir_positional or DEFAULT_MODEL_DIR)
    if args.max_batch_size < 1:
        raise InvalidInputError(f"--max-batch-size {args.max_batch_size} must be at least 1 (1 turns batching off)")
    if args.max_latency_ms < 0:
        raise InvalidInputError(f"--max-latency-ms {args.max_latency_ms:g} must not be negative")
    for flag, port in (("--port", args.http_port), ("--grpc-port", args.grpc_port)):
        if port is not None and not 0 <= port < 65536:
            raise InvalidInputError(f"{flag} {port} is not a TCP port (1-65535, or 0 for a free one)")
    port_file = Path(args.port_file) if args.port_file else None
    if port_file is not None and not port_file.parent.is_dir():
        raise InvalidInputError(
            f"--port-file {port_file}: directory {port_file.parent} does not exist", hint="create it first"
        )
    return ServerSettings(
        model_dir=model_dir,
        model_name=args.model_name,
        http_port=args.http_port,
        grpc_port=args.grpc_port,
        max_batch_size=args.max_batch_size,
        max_latency_ms=args.max_latency_ms,
        latency_buckets=args.latency_buckets,
        grace_period_s=args.grace_period,
        port_file=port_file,
    )
