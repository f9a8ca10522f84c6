"""``aiserving rollout start|status|pause|resume|abort``: a metric-gated progressive canary.

Exit codes of ``start`` and ``resume``: 0 promoted, 20 paused (a person must look), 21 rolled back.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiserving.steps.rollout import RolloutOptions
    from inference_services.connection import KubeClients
    from progressive_delivery.rollout_state import RolloutState

EXIT_BY_PHASE = {"promoted": 0, "running": 0, "paused": 20, "rolled-back": 21, "failed": 21}


def _clients(args: argparse.Namespace) -> KubeClients:
    from inference_services.connection import connect

    return connect(args.kubeconfig, args.context)


def _options(args: argparse.Namespace) -> RolloutOptions:
    from aiserving.steps.rollout import RolloutOptions, parse_labels
    from progressive_delivery.rollout_state import DEFAULT_STEPS, parse_steps

    return RolloutOptions(
        steps=parse_steps(args.steps) if getattr(args, "steps", None) else DEFAULT_STEPS,
        shadow=getattr(args, "shadow", False),
        prometheus_url=args.prometheus or "",
        analysis_file=getattr(args, "analysis", None),
        warmup_s=getattr(args, "warmup", 60.0),
        step_min_duration_s=getattr(args, "step_duration", 300.0),
        failure_limit=getattr(args, "failure_limit", 0),
        undecided_policy=getattr(args, "on_undecided", "pause"),
        foreign_change_policy=getattr(args, "on_foreign_change", "pause"),
        canary_name=getattr(args, "canary_name", "candidate"),
        stable_labels=parse_labels(getattr(args, "stable_labels", "") or ""),
        canary_labels=parse_labels(getattr(args, "canary_labels", "") or ""),
        shadow_sink_url=getattr(args, "shadow_sink", "") or "",
        dry_run=getattr(args, "dry_run", False),
        lease_duration_s=getattr(args, "lease", None),
    )


def summary(state: RolloutState) -> dict[str, Any]:
    """What the commands print: where the rollout is and why."""
    last = state.decisions[-1] if state.decisions else None
    return {
        "name": state.name,
        "namespace": state.namespace,
        "run": state.run_id,
        "phase": state.phase.value,
        "stage": state.stage,
        "stages": list(state.plan.stages),
        "canaryPercent": state.written.canary_percent,
        "message": state.message,
        "dryRun": state.dry_run,
        "lease": state.lease.model_dump() if state.lease else None,
        "lastDecision": last.model_dump(mode="json") if last else None,
    }


def _finish(args: argparse.Namespace, state: RolloutState, ticks: list[dict[str, Any]]) -> int:
    if getattr(args, "report", None):
        from pathlib import Path

        from aiserving.steps.rollout_report import write_rollout_report

        out = Path(args.report)
        write_rollout_report(state, ticks, out / "rollout-report.md", out / "rollout-audit.json")
    print(json.dumps(summary(state), indent=2))
    return EXIT_BY_PHASE[state.phase.value]


def _start(args: argparse.Namespace) -> int:
    from pathlib import Path

    from aiserving.steps.rollout import new_run_id, run_rollout
    from inference_services.config import load_config

    config = load_config(Path(args.config))
    options = _options(args)
    clients = _clients(args)
    namespace = args.namespace or config.namespace or clients.default_namespace
    if not args.dry_run and not args.no_deploy:
        from inference_services.deploy import deploy

        # The new model goes live as a canary with no traffic; the rollout then steps it.
        deploy(config.model_copy(update={"canary_percent": 0}), clients, namespace=namespace, wait=True,
               timeout_s=args.timeout)  # fmt: skip
    state, ticks = run_rollout(clients, namespace, config.name, options, args.run_id or new_run_id())
    return _finish(args, state, ticks)


def _status(args: argparse.Namespace) -> int:
    from aiserving.steps.rollout import read_state

    clients = _clients(args)
    state = read_state(clients, args.namespace or clients.default_namespace, args.name)
    if args.plot:
        from pathlib import Path

        from aiserving.steps.rollout_report import rollout_figure_png

        Path(args.plot).write_bytes(rollout_figure_png(state))
    print(json.dumps(summary(state), indent=2))
    return 0


def _command(args: argparse.Namespace) -> int:
    from aiserving.steps.rollout import rollout_command

    clients = _clients(args)
    state, ticks = rollout_command(
        clients, args.namespace or clients.default_namespace, args.name, args.rollout_command, _options(args),
        reason=getattr(args, "reason", "") or "", force=getattr(args, "force", False),
    )  # fmt: skip
    return _finish(args, state, ticks)


def _cluster(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-n", "--namespace", help="namespace (default: the config's, then the context's)")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG or ~/.kube/config)")
    parser.add_argument("--context", help="kubeconfig context (default: the current context)")


def _driving(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prometheus", metavar="URL", help="Prometheus base URL (default: the rollout's, "
                        "else http://prometheus-operated.monitoring.svc:9090)")  # fmt: skip
    parser.add_argument("--report", metavar="DIR", help="write rollout-report.md and rollout-audit.json here")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``rollout`` to the CLI."""
    rollout = subparsers.add_parser(
        "rollout", help="metric-gated progressive canary: shadow, steps, automatic promotion or rollback",
        description="See docs/progressive-delivery.md. start/resume exit 0 when promoted, 20 when paused, "
        "21 when rolled back.",
    )  # fmt: skip
    actions = rollout.add_subparsers(dest="rollout_command", required=True, metavar="ACTION")

    start = actions.add_parser("start", help="deploy CONFIG as a 0 %% canary, then step, analyse and decide")
    start.add_argument("config", metavar="CONFIG", help="deployment config (YAML) of the new model")
    start.add_argument("--steps", default="5,10,25,50", help="canary percents in order (default 5,10,25,50)")
    start.add_argument("--analysis", metavar="FILE", help="analysis knobs (YAML; docs/progressive-delivery.md)")
    start.add_argument("--dry-run", action="store_true", help="analyse and decide, but change nothing")
    start.add_argument("--no-deploy", action="store_true", help="the canary is already deployed: only roll out")
    start.add_argument("--shadow", action="store_true", help="begin with a shadow stage (replayed copies, 0 %%)")
    start.add_argument("--shadow-sink", metavar="URL", help="replay sink URL the payload logger posts to")
    start.add_argument("--warmup", type=float, default=60.0, help="seconds ignored after each change (60)")
    start.add_argument("--step-duration", type=float, default=300.0, help="least seconds per step (300)")
    start.add_argument(
        "--failure-limit",
        type=int,
        default=0,
        help="FAIL ticks tolerated before rollback (0: the sequential test already bounds false FAILs)",
    )
    start.add_argument("--on-undecided", choices=("pause", "rollback"), default="pause",
                       help="past the inconclusive budget (default pause; never promote)")  # fmt: skip
    start.add_argument("--on-foreign-change", choices=("pause", "rollback"), default="pause",
                       help="when someone else changes the percent or spec (default pause)")  # fmt: skip
    start.add_argument("--canary-name", default="candidate", help="Standard mode: spec.canary[].predictor.name")
    start.add_argument("--stable-labels", metavar="K=V,...", help="label matchers of stable's series (override)")
    start.add_argument("--canary-labels", metavar="K=V,...", help="label matchers of the canary's series (override)")
    start.add_argument("--lease", type=float, help="seconds a silent driver keeps the rollout (3 ticks, >= 10)")
    start.add_argument("--run-id", help="name this run (default: a fresh cli-… ID); the same ID continues it")
    start.add_argument("--timeout", type=float, default=600, help="seconds to wait for the canary to deploy")
    _cluster(start)
    _driving(start)
    start.set_defaults(handler=_start)

    status = actions.add_parser("status", help="where a rollout is, and why")
    status.add_argument("name", metavar="NAME")
    status.add_argument("--plot", metavar="FILE", help="write the weight and per-arm rate plot (PNG)")
    _cluster(status)
    status.set_defaults(handler=_status)

    for action, text in (("pause", "stop a rollout where it is (traffic stays)"),
                         ("resume", "continue a paused rollout, or one whose driver died"),
                         ("abort", "roll back: stable serves 100 %%")):  # fmt: skip
        parser = actions.add_parser(action, help=text)
        parser.add_argument("name", metavar="NAME")
        if action != "resume":
            parser.add_argument("--reason", help="recorded in the rollout state")
        else:
            parser.add_argument("--force", action="store_true", help="take over even while another driver's "
                                "lease is live (only when it is known to be dead)")  # fmt: skip
        _cluster(parser)
        _driving(parser)
        parser.set_defaults(handler=_command)
