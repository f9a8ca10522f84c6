r"""PromQL templates that measure one arm of a canary: requests, errors, fast requests, a latency quantile, classes.

Each template is a :class:`string.Template` (PromQL is full of ``{}``, so ``$name`` placeholders):

- ``$selector``: the arm's label matchers, e.g. ``namespace_name="prod",revision_name="iris-00002"``;
- ``$window``: the analysis window as a range, e.g. ``300s``;
- ``$le``: a regex matching the histogram bucket at the slow threshold (``0\.5``, or ``1(\.0)?`` so that
  both the ``1.0`` Python clients write and the ``1`` Prometheus 3 normalises to match);
- ``$quantile``: the latency quantile, e.g. ``0.99``.

Built-in sets (:data:`TEMPLATES`):

- ``wrapper``: our model wrapper's metrics (``model_wrappers/metrics.py``); used in Standard
  (RawDeployment) mode with per-deployment pod selectors (:func:`standard_arms`) and anywhere the arm is
  a label set (``wrapper`` mode).
- ``knative``: Knative Serving's queue-proxy metrics in Serverless mode, OpenCensus names
  (``revision_app_request_count``, ``revision_app_request_latencies`` in ms) per revision
  (:func:`serverless_arms`).
- ``knative-otel``: Knative >= 1.19 OpenTelemetry names (``kn_serving_invocation_duration_seconds``).
- ``istio``: Istio's ``istio_requests_total`` / ``istio_request_duration_milliseconds`` per workload.

A custom set comes from the analysis file (``AnalysisConfig.queries``) with the same placeholders.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from string import Template

from pydantic import BaseModel, ConfigDict, Field

from serving_core.errors import InvalidInputError

PLACEHOLDERS = ("selector", "window", "le", "quantile")


class QueryTemplates(BaseModel):
    """One arm's queries. ``predictions`` is optional (classifiers only); the rest are required.

    ``latency_unit_seconds`` converts the histogram's unit (1 for seconds, 0.001 for milliseconds) both
    ways: the slow threshold into a bucket bound and the quantile back into seconds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    requests: str = Field(description="Requests in the window: sum(increase(...)).")
    errors: str = Field(description="Failed (5xx) requests in the window.")
    fast: str = Field(description="Requests at or under the slow threshold: the histogram bucket le=$le.")
    latency_quantile: str = Field(description="histogram_quantile($quantile, ...) over the window.")
    predictions: str | None = Field(default=None, description="sum by (class) of predicted classes, if any.")
    latency_unit_seconds: float = Field(default=1.0, gt=0)

    def render(self, name: str, arm: Arm, *, window_seconds: float, slow_seconds: float, quantile: float) -> str:
        """The PromQL for query ``name`` of ``arm``.

        Raises:
            InvalidInputError: the template uses a placeholder other than those listed in the module docstring.
        """
        template = getattr(self, name)
        if template is None:
            raise InvalidInputError(f"the query set has no {name!r} query", hint=f"add `{name}:` to queries")
        bucket = slow_seconds / self.latency_unit_seconds
        values = {
            "selector": arm.matchers(),
            "window": f"{max(1, round(window_seconds))}s",
            "le": bucket_regex(bucket),
            "quantile": f"{quantile:g}",
        }
        try:
            return str(Template(template).substitute(values))
        except (KeyError, ValueError) as error:
            raise InvalidInputError(
                f"query {name!r} has an unknown placeholder ({error}): {template}",
                hint=f"use only ${', $'.join(PLACEHOLDERS)}; write a literal $ as $$",
            ) from error


def bucket_regex(bound: float) -> str:
    r"""A regex (escaped for a PromQL string) for the ``le`` label of bucket ``bound``: ``1(\.0)?`` or ``0\.5``."""
    if bound == int(bound):
        return f"{int(bound)}(\\\\.0)?"
    return re.escape(repr(float(bound))).replace("\\", "\\\\")


@dataclass(frozen=True)
class Arm:
    """One side of the comparison: a name for the report and the label matchers that select its series.

    Attributes:
        name: ``stable`` / ``canary`` or the revision name; shown in reasons and the audit.
        labels: exact-match labels, e.g. ``{"namespace_name": "prod", "revision_name": "iris-00002"}``.
        label_regex: regex-match labels, e.g. ``{"pod": "iris-predictor-[a-z0-9]+-[a-z0-9]+"}``.
    """

    name: str
    labels: Mapping[str, str]
    label_regex: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        """An arm must select something: an empty selector would read both arms at once."""
        if not self.labels and not self.label_regex:
            raise InvalidInputError(f"arm {self.name!r} has no labels", hint="give the labels that select its series")

    def matchers(self) -> str:
        """The PromQL label matchers, without braces."""
        exact = [f'{key}="{_escape(value)}"' for key, value in sorted(self.labels.items())]
        regex = [f'{key}=~"{_escape(value)}"' for key, value in sorted(self.label_regex.items())]
        return ",".join(exact + regex)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def serverless_arms(namespace: str, stable_revision: str, canary_revision: str) -> tuple[Arm, Arm]:
    """Stable and canary in Serverless mode: Knative revisions (``latestRolledoutRevision``, ``latestCreatedRevision``).

    The labels are those of the ``knative`` template; for ``knative-otel`` use ``k8s_namespace_name`` and
    ``kn_revision_name`` (:func:`otel_serverless_arms`).
    """
    return (
        Arm("stable", {"namespace_name": namespace, "revision_name": stable_revision}),
        Arm("canary", {"namespace_name": namespace, "revision_name": canary_revision}),
    )


def otel_serverless_arms(namespace: str, stable_revision: str, canary_revision: str) -> tuple[Arm, Arm]:
    """Stable and canary revisions with Knative's OpenTelemetry label names."""
    return (
        Arm("stable", {"k8s_namespace_name": namespace, "kn_revision_name": stable_revision}),
        Arm("canary", {"k8s_namespace_name": namespace, "kn_revision_name": canary_revision}),
    )


def standard_arms(namespace: str, isvc: str, canary_name: str) -> tuple[Arm, Arm]:
    """Stable and canary in Standard mode: pods of Deployments ``{isvc}-predictor`` and ``{isvc}-{canary}-predictor``.

    A pod of a Deployment is named ``<deployment>-<replicaset hash>-<pod hash>``, and the Prometheus
    Operator's PodMonitor labels each series with ``namespace`` and ``pod``, so the regex tells the two
    Deployments apart without relabelling.
    """
    pod_suffix = "-[a-z0-9]+-[a-z0-9]+"
    return (
        Arm("stable", {"namespace": namespace}, {"pod": f"{re.escape(isvc)}-predictor{pod_suffix}"}),
        Arm(
            "canary",
            {"namespace": namespace},
            {"pod": f"{re.escape(isvc)}-{re.escape(canary_name)}-predictor{pod_suffix}"},
        ),
    )


WRAPPER = QueryTemplates(
    requests="sum(increase(model_requests_total{$selector}[$window]))",
    # HTTP 5xx and the gRPC statuses that mean the server failed (the wrapper labels gRPC by status name).
    errors='sum(increase(model_requests_total{$selector,code=~"5..|INTERNAL|UNAVAILABLE|UNKNOWN|DATA_LOSS"}[$window]))',
    fast='sum(increase(model_request_duration_seconds_bucket{$selector,le=~"$le"}[$window]))',
    latency_quantile=(
        "histogram_quantile($quantile, sum by (le) (rate(model_request_duration_seconds_bucket{$selector}[$window])))"
    ),
    predictions="sum by (class) (increase(model_prediction_total{$selector}[$window]))",
)

KNATIVE = QueryTemplates(
    requests="sum(increase(revision_app_request_count{$selector}[$window]))",
    errors='sum(increase(revision_app_request_count{$selector,response_code_class="5xx"}[$window]))',
    fast='sum(increase(revision_app_request_latencies_bucket{$selector,le=~"$le"}[$window]))',
    latency_quantile=(
        "histogram_quantile($quantile, sum by (le) (rate(revision_app_request_latencies_bucket{$selector}[$window])))"
    ),
    latency_unit_seconds=0.001,
)

KNATIVE_OTEL = QueryTemplates(
    requests="sum(increase(kn_serving_invocation_duration_seconds_count{$selector}[$window]))",
    errors=(
        "sum(increase(kn_serving_invocation_duration_seconds_count"
        '{$selector,http_response_status_code=~"5.."}[$window]))'
    ),
    fast='sum(increase(kn_serving_invocation_duration_seconds_bucket{$selector,le=~"$le"}[$window]))',
    latency_quantile=(
        "histogram_quantile($quantile, sum by (le) "
        "(rate(kn_serving_invocation_duration_seconds_bucket{$selector}[$window])))"
    ),
)

ISTIO = QueryTemplates(
    requests='sum(increase(istio_requests_total{reporter="destination",$selector}[$window]))',
    errors='sum(increase(istio_requests_total{reporter="destination",$selector,response_code=~"5.*"}[$window]))',
    fast='sum(increase(istio_request_duration_milliseconds_bucket{reporter="destination",$selector,le=~"$le"}[$window]))',
    latency_quantile=(
        "histogram_quantile($quantile, sum by (le) "
        '(rate(istio_request_duration_milliseconds_bucket{reporter="destination",$selector}[$window])))'
    ),
    latency_unit_seconds=0.001,
)

TEMPLATES: Mapping[str, QueryTemplates] = {
    "wrapper": WRAPPER,
    "knative": KNATIVE,
    "knative-otel": KNATIVE_OTEL,
    "istio": ISTIO,
}

# What each mode reads unless the analysis file names another set.
DEFAULT_TEMPLATE_BY_MODE: Mapping[str, str] = {"serverless": "knative", "standard": "wrapper", "wrapper": "wrapper"}


def templates_named(name: str) -> QueryTemplates:
    """A built-in template set by name.

    Raises:
        InvalidInputError: no such set.
    """
    try:
        return TEMPLATES[name]
    except KeyError as error:
        raise InvalidInputError(
            f"unknown query template set {name!r}", hint=f"use one of {', '.join(TEMPLATES)} or give `queries:`"
        ) from error
