"""``aiserving render``, ``config-schema``, ``deploy``, ``undeploy`` and ``canary set|promote|rollback|status``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from inference_services.config import config_json_schema, load_config
from inference_services.traffic import traffic_split

# The Kubernetes client and the kserve SDK take seconds to import: the handlers that need them import
# them, so `--help`, `config-schema` and the other features' commands do not pay for them.
if TYPE_CHECKING:
    from inference_services.canary import CanaryControl
    from inference_services.connection import KubeClients


def _print_json(document: dict[str, Any]) -> None:
    print(json.dumps(document, indent=2))


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """The kubectl-style connection flags every cluster command takes."""
    parser.add_argument("-n", "--namespace", help="namespace (default: the config's, then the context's)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: the current context)")


def add_wait_arguments(parser: argparse.ArgumentParser) -> None:
    """``--wait`` and ``--timeout``."""
    parser.add_argument("--wait", action="store_true", help="watch until the change is serving")
    parser.add_argument(
        "--timeout", type=float, default=600,
        help="seconds to wait with --wait, a failed canary's rollback included (default 600)",
    )  # fmt: skip


def _clients(args: argparse.Namespace) -> KubeClients:
    from inference_services.connection import connect

    return connect(args.kubeconfig, args.context)


def _summary(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": document["metadata"]["name"],
        "namespace": document["metadata"].get("namespace"),
        "generation": document["metadata"].get("generation"),
        "observedGeneration": document.get("status", {}).get("observedGeneration"),
        "url": document.get("status", {}).get("url"),
        "traffic": [share.__dict__ for share in traffic_split(document)],
    }


def _render(args: argparse.Namespace) -> int:
    # Imported here: the kserve SDK takes seconds to import and only render/deploy need its models.
    from inference_services.deploy import render

    config = load_config(Path(args.config))
    print(yaml.safe_dump(render(config, args.namespace, args.kserve_version), sort_keys=False), end="")
    return 0


def _config_schema(args: argparse.Namespace) -> int:
    print(config_json_schema(), end="")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from inference_services.deploy import deploy

    config = load_config(Path(args.config))
    clients = _clients(args)
    result = deploy(
        config, clients, namespace=args.namespace, wait=args.wait, timeout_s=args.timeout,
        target_version=args.kserve_version,
    )  # fmt: skip
    _print_json({**_summary(result.document), "changed": result.changed, "canary": result.canary})
    return 0


def _undeploy(args: argparse.Namespace) -> int:
    from inference_services.deploy import undeploy

    clients = _clients(args)
    undeploy(args.name, clients, namespace=args.namespace, wait=args.wait, timeout_s=args.timeout)
    _print_json({"name": args.name, "deleted": True})
    return 0


def _control(args: argparse.Namespace) -> CanaryControl:
    from inference_services.canary import CanaryControl

    clients = _clients(args)
    return CanaryControl(clients, args.namespace or clients.default_namespace)


def _canary_set(args: argparse.Namespace) -> int:
    from inference_services.canary import check_percent

    check_percent(args.percent)
    document = _control(args).set_percent(args.name, args.percent, wait=args.wait, timeout_s=args.timeout)
    _print_json(_summary(document))
    return 0


def _canary_promote(args: argparse.Namespace) -> int:
    _print_json(_summary(_control(args).promote(args.name, wait=args.wait, timeout_s=args.timeout)))
    return 0


def _canary_rollback(args: argparse.Namespace) -> int:
    _print_json(_summary(_control(args).rollback(args.name, wait=args.wait, timeout_s=args.timeout)))
    return 0


def _canary_status(args: argparse.Namespace) -> int:
    _print_json(_control(args).report(args.name).as_dict())
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the InferenceService commands to the CLI."""
    render_parser = subparsers.add_parser(
        "render", help="print the InferenceService YAML for a deployment config (CRD-validated, nothing sent)"
    )
    render_parser.add_argument("config", metavar="CONFIG", help="deployment config (YAML)")
    render_parser.add_argument("-n", "--namespace", help="namespace to render into")
    render_parser.add_argument("--kserve-version", help="target KServe release (default: the config's)")
    render_parser.set_defaults(handler=_render)

    schema_parser = subparsers.add_parser(
        "config-schema", help="print the deployment config's JSON schema (docs/deployment-config.schema.json)"
    )
    schema_parser.set_defaults(handler=_config_schema)

    deploy_parser = subparsers.add_parser("deploy", help="create or update the InferenceService of a config")
    deploy_parser.add_argument("config", metavar="CONFIG", help="deployment config (YAML)")
    deploy_parser.add_argument("--kserve-version", help="target KServe release (default: the config's)")
    add_cluster_arguments(deploy_parser)
    add_wait_arguments(deploy_parser)
    deploy_parser.set_defaults(handler=_deploy)

    undeploy_parser = subparsers.add_parser("undeploy", help="delete an InferenceService (and its history)")
    undeploy_parser.add_argument("name", metavar="NAME")
    add_cluster_arguments(undeploy_parser)
    add_wait_arguments(undeploy_parser)
    undeploy_parser.set_defaults(handler=_undeploy)

    canary = subparsers.add_parser("canary", help="set, promote, roll back or show a canary split")
    actions = canary.add_subparsers(dest="canary_command", required=True, metavar="ACTION")
    set_parser = actions.add_parser("set", help="send PERCENT of requests to the canary")
    set_parser.add_argument("name", metavar="NAME")
    set_parser.add_argument("--percent", type=int, required=True, help="0-100")
    set_parser.set_defaults(handler=_canary_set)
    promote = actions.add_parser("promote", help="give the canary all traffic and make it the stable version")
    promote.add_argument("name", metavar="NAME")
    promote.set_defaults(handler=_canary_promote)
    rollback = actions.add_parser(
        "rollback", help="stop the canary; after a promotion, restore the spec kept before it"
    )
    rollback.add_argument("name", metavar="NAME")
    rollback.set_defaults(handler=_canary_rollback)
    status = actions.add_parser("status", help="which revision gets what percent (JSON)")
    status.add_argument("name", metavar="NAME")
    status.set_defaults(handler=_canary_status)
    for parser in (set_parser, promote, rollback, status):
        add_cluster_arguments(parser)
    for parser in (set_parser, promote, rollback):
        add_wait_arguments(parser)
