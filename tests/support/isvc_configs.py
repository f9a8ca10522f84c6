"""Deployment configs for tests: one helper, explicit differences per test."""

from __future__ import annotations

from typing import Any

from inference_services.config import DeploymentConfig, parse_config


def model_uri(name: str, version: int) -> str:
    return f"s3://models/{name}/{version}"


def gpu_config(
    name: str, version: int, *, mode: str = "knative", canary: int | None = None, **extra: Any
) -> DeploymentConfig:
    document: dict[str, Any] = {
        "name": name,
        "model_format": "triton",
        "storage_uri": model_uri(name, version),
        "gpu": {"count": 1},
        "mode": mode,
        "canary_percent": canary,
        **extra,
    }
    if mode == "standard":
        document.setdefault("autoscaling", {"min_replicas": 1})
    return parse_config(document)
