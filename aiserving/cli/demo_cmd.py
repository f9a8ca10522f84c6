"""``aiserving demo``: what ``make demo`` runs."""

from __future__ import annotations

import argparse
from pathlib import Path


def _demo(args: argparse.Namespace) -> int:
    # Imported here: the demo imports MLflow, which the other commands' start-up should not pay for.
    from aiserving.demo import run_demo

    run_demo(Path(args.state_dir), verbose=args.verbose)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``demo`` to the CLI."""
    demo = subparsers.add_parser("demo", help="run the main job on embedded defaults, locally")
    demo.add_argument("--state-dir", default=".aiserving", help="where local services keep their state")
    demo.add_argument(
        "--verbose", action="store_true", help="stream MLflow's and the KFP runner's output too (always in demo.log)"
    )
    demo.set_defaults(handler=_demo)
