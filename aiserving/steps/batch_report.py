"""The batch job report: Markdown with a throughput-over-time plot and the latency distribution.

Figures are matplotlib PNGs embedded as ``data:`` URIs, so the report is one self-contained file the
Kubeflow UI renders as it is.
"""

from __future__ import annotations

import base64
import io
from collections import Counter
from typing import Any

from batch_jobs.progress import LATENCY_BOUNDS_S, JobCounters


def _png_data_uri(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def throughput_png(counters: JobCounters) -> str:
    """Items per second over the job's wall-clock time, as a PNG ``data:`` URI."""
    import matplotlib

    matplotlib.use("Agg")  # no display in a pod
    from matplotlib import pyplot

    start = min(counters.timeline) if counters.timeline else 0
    seconds = sorted(counters.timeline)
    figure, axes = pyplot.subplots(figsize=(7, 2.6))
    axes.plot(
        [second - start for second in seconds], [counters.timeline[second] for second in seconds], color="#2b6cb0"
    )
    axes.set_xlabel("seconds since start")
    axes.set_ylabel("items/s")
    axes.set_title("Throughput over time")
    axes.grid(alpha=0.3)
    uri = _png_data_uri(figure)
    pyplot.close(figure)
    return uri


def _bucket_labels() -> list[str]:
    bounds_ms = [bound * 1000 for bound in LATENCY_BOUNDS_S]
    return [f"≤{bound:g}" for bound in bounds_ms] + [f">{bounds_ms[-1]:g}"]


def latency_png(counters: JobCounters) -> str:
    """The request-latency histogram (milliseconds), as a PNG ``data:`` URI."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    figure, axes = pyplot.subplots(figsize=(7, 2.6))
    axes.bar(range(len(counters.latency_counts)), counters.latency_counts, color="#dd6b20")
    axes.set_xticks(range(len(counters.latency_counts)), _bucket_labels(), rotation=45, fontsize=8)
    axes.set_xlabel("request latency (ms)")
    axes.set_ylabel("requests")
    axes.set_title("Latency distribution")
    uri = _png_data_uri(figure)
    pyplot.close(figure)
    return uri


def _ms(value: object) -> str:
    return "-" if value is None else f"{float(str(value)) * 1000:g} ms"


def render_batch_report(summary: dict[str, Any], counters: JobCounters, errors: list[dict[str, object]]) -> str:
    """The report's Markdown: totals, the two figures and the most common error reasons."""
    reasons = Counter(str(error.get("error", "")) for error in errors)
    rows = [
        "| | |",
        "|---|---|",
        f"| Input | `{summary['input_uri']}` |",
        f"| Model | `{summary['model_name']}` |",
        f"| Items | {summary['items_done']:,} done, {summary['errors']:,} failed of {summary['total_items']:,} |",
        f"| Shards | {summary['shards_done']} of {summary['shards']} |",
        f"| Throughput | {summary['items_per_s']:,} items/s |",
        f"| Request latency | p50 ≤ {_ms(summary['latency_p50_s'])}, p99 ≤ {_ms(summary['latency_p99_s'])} |",
    ]
    parts = [
        "# Batch inference job",
        "\n".join(rows),
        f"![Throughput over time]({throughput_png(counters)})",
        f"![Latency distribution]({latency_png(counters)})",
    ]
    if reasons:
        table = ["| failed items | reason |", "|---|---|"]
        table += [f"| {count} | {reason.replace('|', '/')[:200]} |" for reason, count in reasons.most_common(10)]
        parts += ["## Errors", "\n".join(table)]
    return "\n\n".join(parts) + "\n"
