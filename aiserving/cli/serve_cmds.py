"""``aiserving serve DIR``: the Python model wrapper server (same entry point as ``python -m model_wrappers``)."""

from __future__ import annotations

import argparse
import logging


def _serve(args: argparse.Namespace) -> int:
    from model_wrappers.server import serve
    from model_wrappers.settings import settings_from_args

    # The server logs its device choice, readiness and shutdown; show them even without -v.
    logging.getLogger().setLevel(logging.INFO)
    serve(settings_from_args(args))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve`` to the CLI."""
    from model_wrappers.settings import add_server_arguments

    parser = subparsers.add_parser(
        "serve",
        help="serve an MLflow model directory over KServe V1/V2 REST and gRPC with adaptive batching",
        description="Loads the pyfunc in DIR (default /mnt/models), warms it up, then reports ready.",
    )
    add_server_arguments(parser)
    parser.set_defaults(handler=_serve)
