"""Pipeline ``progressive-rollout``: step a deployed canary on live metrics; roll back if the run dies."""

from kfp import dsl

from components.progressive_rollout import progressive_rollout
from components.rollback_rollout_on_failure import rollback_rollout_on_failure


@dsl.pipeline(
    name="progressive-rollout",
    description="Roll out the canary of a KServe InferenceService step by step (optionally after a shadow "
    "stage), judging it on Prometheus against the stable arm at each step: promote, roll back or pause for a "
    "person. A failed or cancelled run rolls back the rollout it started.",
)
def progressive_rollout_pipeline(
    isvc_name: str = "demo-iris-classifier",
    namespace: str = "ai-serving",
    steps: str = "5,10,25,50",
    shadow: bool = False,
    shadow_sink_url: str = "",
    prometheus_url: str = "",
    analysis: dict[str, object] = {},  # noqa: B006 - KFP reads the default; it is never mutated
    warmup_s: float = 60.0,
    step_min_duration_s: float = 300.0,
    failure_limit: int = 0,
    undecided_policy: str = "pause",
    dry_run: bool = False,
    target: str = "cluster",
) -> None:
    """Progressive rollout of a deployed canary.

    Args:
        isvc_name: InferenceService name; its canary is already deployed (e.g. by deploy-model).
        namespace: Kubernetes namespace of the InferenceService.
        steps: Canary percents in order, e.g. 5,10,25,50; promotion follows the last.
        shadow: Begin with a shadow stage (replayed copies of live requests, no user traffic).
        shadow_sink_url: The replay sink KServe's payload logger posts to (shadow stage only).
        prometheus_url: Prometheus base URL; empty for http://prometheus-operated.monitoring.svc:9090.
        analysis: Analysis knobs as JSON (docs/progressive-delivery.md, Knobs); {} for the mode's defaults.
        warmup_s: Seconds ignored after each weight change.
        step_min_duration_s: Least seconds on a step before stepping on.
        failure_limit: FAIL ticks tolerated before a rollback.
        undecided_policy: pause or rollback when a step stays undecided past the budget (never promote).
        dry_run: Analyse and decide, but change nothing.
        target: cluster (a rollout needs a live InferenceService).
    """
    exit_task = rollback_rollout_on_failure(
        isvc_name=isvc_name, namespace=namespace, target=target, pipeline_run=dsl.PIPELINE_JOB_ID_PLACEHOLDER
    )
    with dsl.ExitHandler(
        exit_task.set_display_name("roll back on failure").set_caching_options(False), name="rollout-with-rollback"
    ):
        progressive_rollout(
            isvc_name=isvc_name, namespace=namespace, target=target, pipeline_run=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            steps=steps, shadow=shadow, shadow_sink_url=shadow_sink_url, prometheus_url=prometheus_url,
            analysis=analysis, warmup_s=warmup_s, step_min_duration_s=step_min_duration_s,
            failure_limit=failure_limit, undecided_policy=undecided_policy, dry_run=dry_run,
        ).set_display_name("progressive rollout").set_caching_options(False)  # fmt: skip
