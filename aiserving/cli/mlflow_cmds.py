"""``aiserving resolve`` and ``aiserving download``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from mlflow_source import RegistryConnection
from mlflow_source.connection import DEFAULT_TIMEOUT_S


def add_registry_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the MLflow connection flags shared by every registry command."""
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI)")
    parser.add_argument("--registry-uri", help="MLflow registry URI (default: $MLFLOW_REGISTRY_URI or tracking URI)")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds to wait for the registry to answer"
    )


def connection_from(args: argparse.Namespace) -> RegistryConnection:
    """Build the registry connection from parsed flags and the environment."""
    return RegistryConnection.from_settings(args.tracking_uri, args.registry_uri, args.timeout)


def _print_json(document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=2, sort_keys=False))


# resolve_model and download_model are imported in the handlers: they import MLflow (over a second).
def _resolve(args: argparse.Namespace) -> int:
    from mlflow_source import resolve_model

    resolved = resolve_model(args.model_uri, connection_from(args))
    _print_json(resolved.model_dump(mode="json"))
    return 0


def _download(args: argparse.Namespace) -> int:
    from mlflow_source import download_model

    lineage = download_model(args.model_uri, Path(args.out), connection_from(args))
    _print_json(lineage.model_dump(mode="json"))
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``resolve`` and ``download`` to the CLI."""
    resolve = subparsers.add_parser(
        "resolve",
        help="resolve a models:/ URI and print what the registry knows about it as JSON",
        description="Accepted forms: models:/NAME/VERSION, models:/NAME@ALIAS, models:/NAME/latest.",
    )
    resolve.add_argument("model_uri", metavar="MODEL_URI")
    add_registry_arguments(resolve)
    resolve.set_defaults(handler=_resolve)

    download = subparsers.add_parser(
        "download",
        help="download a model version's artifacts and write lineage.json",
        description="Streams the artifacts into OUT (new or empty) and records lineage with a content digest.",
    )
    download.add_argument("model_uri", metavar="MODEL_URI")
    download.add_argument("--out", required=True, help="new or empty directory to download into")
    add_registry_arguments(download)
    download.set_defaults(handler=_download)
