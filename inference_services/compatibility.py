"""Which KServe release a config needs, and refusing a target that is too old for it."""

from __future__ import annotations

from inference_services.config import DeploymentConfig
from inference_services.traffic import DeploymentMode
from inference_services.versions import KServeVersion, supported_version
from serving_core.errors import UnsupportedError


def required_features(config: DeploymentConfig) -> list[tuple[str, KServeVersion]]:
    """Each feature the config uses that not every supported KServe has, with the release that added it."""
    needs: list[tuple[str, KServeVersion]] = []
    scaling = config.autoscaling
    if config.mode is DeploymentMode.STANDARD and config.canary_percent is not None:
        needs.append(("a Standard-mode canary (spec.canary)", KServeVersion(0, 20)))
    if scaling.autoscaler_class == "keda" or scaling.keda_metrics:
        needs.append(("the KEDA autoscaler class (predictor.autoScaling)", KServeVersion(0, 15)))
    if scaling.autoscaler_class == "none":
        needs.append(("autoscalerClass none", KServeVersion(0, 16)))
    return needs


def ensure_supported(config: DeploymentConfig, target: str | None = None) -> KServeVersion:
    """The target KServe version, after checking the config needs nothing newer.

    Raises:
        UnsupportedError: a feature needs a newer KServe than ``target``; the message names both.
        InvalidInputError: ``target`` is not a supported version.
    """
    version = supported_version(target or config.kserve_version)
    too_new = [(feature, needed) for feature, needed in required_features(config) if needed > version]
    if too_new:
        details = "; ".join(f"{feature} needs KServe >= {needed}" for feature, needed in too_new)
        raise UnsupportedError(
            f"config {config.name!r} cannot be deployed on KServe {version}: {details}",
            hint="upgrade KServe, target a newer --kserve-version, or drop the feature "
            "(in Knative mode a canary uses canaryTrafficPercent and works from 0.14)",
        )
    return version
