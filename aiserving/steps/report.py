"""Step: a Markdown report of what a deployment run produced, and the same as an HTML page beside it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiserving.steps.artifacts import ArtifactLike
from aiserving.steps.report_figures import chain_svg, markdown_image, split_svg
from aiserving.steps.report_page import write_report


def _row(label: str, value: Any) -> str:
    text = "—" if value in (None, "", [], {}) else str(value)
    return f"| {label} | {text.replace('|', '/')} |"


def _traffic_rows(traffic: list[dict[str, Any]]) -> list[str]:
    if not traffic:
        return ["No traffic split reported (rendered only, or the controller has not reported yet)."]
    rows = ["| revision | tag | percent |", "|---|---|---|"]
    rows += [
        f"| {entry.get('revision', '—')} | {entry.get('tag') or '—'} | {entry.get('percent', 0)}% |"
        for entry in traffic
    ]
    shares = [(str(entry.get("revision") or entry.get("tag")), float(entry.get("percent", 0))) for entry in traffic]
    split = ", ".join(f"{label} {percent:g}%" for label, percent in shares)
    return [*rows, "", markdown_image(f"Traffic split: {split}", split_svg(shares))]


def _chain_figure(model: dict[str, Any], package: dict[str, Any], image_ref: str, service: dict[str, Any]) -> str:
    digest = image_ref.rpartition("@")[2] if "@" in image_ref else image_ref.rpartition("/")[2]
    stages = [
        ("MLflow model", f"{model.get('model_name', '?')} v{model.get('model_version', '?')}"),
        ("package", f"{package.get('runtime', '?')}, {package.get('model_format', '?')}"),
        ("image", digest),
        ("InferenceService", f"{service.get('namespace', '?')}/{service.get('name', '?')}"),
    ]
    alt = "Chain: " + " → ".join(f"{title} {detail}" for title, detail in stages)
    return markdown_image(alt, chain_svg(stages))


def render_report(model: dict[str, Any], package: dict[str, Any], image_ref: str, service: dict[str, Any]) -> str:
    """The report's Markdown from the three artifacts' metadata."""
    lines = [
        f"# Deployment of {model.get('model_name', '?')} version {model.get('model_version', '?')}",
        "",
        _chain_figure(model, package, image_ref, service),
        "",
        "## Lineage",
        "",
        "| | |",
        "|---|---|",
        _row("model", f"{model.get('model_name')} v{model.get('model_version')}"),
        _row("aliases", ", ".join(model.get("aliases", []))),
        _row("run id", model.get("run_id")),
        _row("model id", model.get("model_id")),
        _row("content digest", model.get("content_digest")),
        _row("tracking URI", model.get("tracking_uri")),
        "",
        "## Package and image",
        "",
        "| | |",
        "|---|---|",
        _row("runtime", package.get("runtime")),
        _row("model format", package.get("model_format")),
        _row("protocol", package.get("protocol_version")),
        _row("package digest", package.get("package_digest")),
        _row("image", image_ref),
        "",
        "## InferenceService",
        "",
        "| | |",
        "|---|---|",
        _row("name", f"{service.get('namespace')}/{service.get('name')}"),
        _row("target", service.get("target")),
        _row("mode", service.get("mode")),
        _row("URL", service.get("url")),
        _row("GPU resources", service.get("gpu_resources")),
        _row("canary percent", service.get("canary_percent")),
        _row("revision", service.get("revision")),
        "",
        "### Traffic",
        "",
        *_traffic_rows(list(service.get("traffic", []))),
        "",
    ]
    return "\n".join(lines)


def report_step(
    model: ArtifactLike, package: ArtifactLike, image_ref: str, inference_service: ArtifactLike, report: ArtifactLike
) -> None:
    """Write the report artifact (the Kubeflow UI renders Markdown artifacts) and ``report.html`` beside it.

    The page is for people running locally: it opens in a browser from the file, with no server.
    """
    text = render_report(dict(model.metadata), dict(package.metadata), image_ref, dict(inference_service.metadata))
    write_report(Path(report.path), text)
