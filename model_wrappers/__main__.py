"""``python -m model_wrappers``: the same entry point as ``aiserving serve`` (the model-server image runs it)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from model_wrappers.settings import add_server_arguments, settings_from_args
from serving_core.errors import AiServingError


def build_parser(prog: str = "python -m model_wrappers") -> argparse.ArgumentParser:
    """The serving command line."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Serve an MLflow pyfunc over KServe V1/V2 REST and gRPC with adaptive batching."
    )
    add_server_arguments(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the flags, serve until stopped, and return the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        from model_wrappers.server import serve

        serve(settings_from_args(args))
    except AiServingError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
