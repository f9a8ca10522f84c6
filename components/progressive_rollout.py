"""Component: a metric-gated progressive rollout of the canary on a live InferenceService."""

from kfp import dsl

from components.image import COMPONENTS_IMAGE


@dsl.component(base_image=COMPONENTS_IMAGE, install_kfp_package=False)
def progressive_rollout(
    isvc_name: str,
    namespace: str,
    target: str,
    pipeline_run: str,
    steps: str,
    shadow: bool,
    shadow_sink_url: str,
    prometheus_url: str,
    analysis: dict[str, object],
    warmup_s: float,
    step_min_duration_s: float,
    failure_limit: int,
    undecided_policy: str,
    dry_run: bool,
    report: dsl.Output[dsl.Markdown],
    audit: dsl.Output[dsl.Artifact],
) -> str:
    """Step the canary's traffic, judge it on Prometheus against stable, and promote, roll back or pause.

    Args:
        isvc_name: InferenceService name; its canary is already deployed.
        namespace: Kubernetes namespace of the InferenceService.
        target: cluster (a rollout needs a live InferenceService).
        pipeline_run: This run's ID; the rollout is stamped with it so the exit handler can undo it.
        steps: Canary percents in order, e.g. "5,10,25,50"; promotion follows the last.
        shadow: Begin with a shadow stage: replayed copies of live requests, no user traffic.
        shadow_sink_url: The replay sink KServe's payload logger posts to (shadow stage).
        prometheus_url: Prometheus base URL; empty for http://prometheus-operated.monitoring.svc:9090.
        analysis: Analysis knobs (docs/progressive-delivery.md, Knobs); {} for the mode's defaults.
        warmup_s: Seconds ignored after each weight change.
        step_min_duration_s: Least seconds on a step before stepping on.
        failure_limit: FAIL ticks tolerated before a rollback.
        undecided_policy: pause or rollback when a step stays undecided past the budget (never promote).
        dry_run: Analyse and decide, but change nothing.
        report: Markdown report: traffic weight over time, per-arm rates with credible bands, each decision.
        audit: JSON audit: every query, count and decision.

    Returns:
        The decision: promoted, rolled-back or paused.
    """
    from aiserving.steps.rollout import RolloutOptions, parse_steps_or_default, progressive_rollout_step

    options = RolloutOptions(
        steps=parse_steps_or_default(steps), shadow=shadow, shadow_sink_url=shadow_sink_url,
        prometheus_url=prometheus_url, analysis=analysis, warmup_s=warmup_s, step_min_duration_s=step_min_duration_s,
        failure_limit=failure_limit, undecided_policy=undecided_policy, dry_run=dry_run,  # type: ignore[arg-type]
    )  # fmt: skip
    return progressive_rollout_step(
        isvc_name=isvc_name, namespace=namespace, target=target, pipeline_run=pipeline_run, options=options,
        report=report, audit=audit,
    )  # fmt: skip
