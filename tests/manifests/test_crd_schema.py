"""KServe kinds pass KServe's own CRD schemas, other custom kinds our strict hand-written ones.

Strictness is what makes these checks worth having: the cluster prunes unknown fields silently, so
each validator is also shown to reject a planted typo.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable

import pytest

from tests.support.manifests.objects import Obj, of_kind, ref
from tests.support.manifests.schemas import (
    HAND_SCHEMAS,
    hand_validator,
    kserve_crd_dir,
    kserve_validator,
    kserve_versions,
    schema_errors,
    validator_family,
)
from tests.support.tools import skip_or_fail


@pytest.fixture(scope="session")
def kserve_releases() -> list[str]:
    releases = kserve_versions()
    if not releases:
        skip_or_fail(f"no KServe CRDs in {kserve_crd_dir()}; set KSERVE_CRD_DIR")
    return releases


def unique(objects: list[tuple[str, Obj]], family: str) -> list[Obj]:
    seen: dict[str, Obj] = {}
    for _, obj in objects:
        if validator_family(obj) == family:
            seen.setdefault(json.dumps(obj, sort_keys=True), obj)
    return list(seen.values())


def kserve_errors(release: str, obj: Obj) -> list[str]:
    return schema_errors(kserve_validator(release, obj["kind"], obj["apiVersion"]), obj)


def test_kserve_crds_cover_the_supported_range(kserve_releases: list[str]) -> None:
    assert kserve_releases[0] == "v0.14.0"


def test_kserve_kinds_match_every_kserve_release(
    all_objects: list[tuple[str, Obj]], kserve_releases: list[str]
) -> None:
    objects = unique(all_objects, "kserve")
    assert {obj["kind"] for obj in objects} == {"InferenceService", "ServingRuntime"}
    failures = [
        f"KServe {release} {ref(obj)}: {error}"
        for release in kserve_releases
        for obj in objects
        for error in kserve_errors(release, obj)
    ]
    assert failures == []


def first(all_objects: list[tuple[str, Obj]], render: str, kind: str) -> Obj:
    [obj, *_] = [obj for name, obj in all_objects if name == render and obj["kind"] == kind]
    return copy.deepcopy(obj)


def misspell_resources(isvc: Obj) -> None:
    model = isvc["spec"]["predictor"]["model"]
    model["resource"] = model.pop("resources")


def knative_doc_bug_qps(isvc: Obj) -> None:
    isvc["spec"]["predictor"]["scaleMetric"] = "qps"


def runtime_port_typo(runtime: Obj) -> None:
    runtime["spec"]["containers"][0]["ports"][0]["containerport"] = 8080


@pytest.mark.parametrize(
    ("kind", "plant", "reported"),
    [
        ("InferenceService", misspell_resources, "'resource' was unexpected"),
        ("InferenceService", knative_doc_bug_qps, "'qps' is not one of"),
        ("ServingRuntime", runtime_port_typo, "'containerport' was unexpected"),
    ],
)
def test_kserve_schema_rejects_planted_mistakes(
    all_objects: list[tuple[str, Obj]],
    kserve_releases: list[str],
    kind: str,
    plant: Callable[[Obj], None],
    reported: str,
) -> None:
    obj = first(all_objects, "overlays/prod", kind)
    assert kserve_errors(kserve_releases[-1], obj) == []
    plant(obj)
    assert any(reported in error for error in kserve_errors(kserve_releases[-1], obj))


def test_fields_newer_than_kserve_0_14_are_refused_for_it(
    all_objects: list[tuple[str, Obj]], kserve_releases: list[str]
) -> None:
    isvc = first(all_objects, "overlays/prod", "InferenceService")
    isvc["spec"]["canary"] = [{"trafficPercent": 10, "predictor": {"name": "next"}}]
    assert any("'canary' was unexpected" in error for error in kserve_errors("v0.14.0", isvc))


def test_custom_kinds_match_their_strict_schemas(all_objects: list[tuple[str, Obj]]) -> None:
    objects = unique(all_objects, "hand")
    assert {obj["kind"] for obj in objects} == set(HAND_SCHEMAS)
    failures = [f"{ref(obj)}: {error}" for obj in objects for error in schema_errors(hand_validator(obj["kind"]), obj)]
    assert failures == []


HAND_MISTAKES: dict[str, tuple[str, str, Callable[[Obj], object], str]] = {
    "ClusterPolicy renamed field": (
        "gpu-operator",
        "ClusterPolicy",
        lambda o: o["spec"]["devicePlugin"].update(configMap={"name": "device-plugin-config"}),
        "'configMap' was unexpected",
    ),
    "ClusterPolicy unknown MIG strategy": (
        "gpu-operator",
        "ClusterPolicy",
        lambda o: o["spec"]["mig"].update(strategy="multi"),
        "'multi' is not one of ['none', 'single', 'mixed']",
    ),
    "ScaledObject numeric threshold": (
        "overlays/prod",
        "ScaledObject",
        lambda o: o["spec"]["triggers"][0]["metadata"].update(threshold=50),
        "50 is not of type 'string'",
    ),
    "ScaledObject trigger without metadata": (
        "overlays/prod",
        "ScaledObject",
        lambda o: o["spec"]["triggers"][0].pop("metadata"),
        "'metadata' is a required property",
    ),
    "PodMonitor numeric port": (
        "overlays/prod",
        "PodMonitor",
        lambda o: o["spec"]["podMetricsEndpoints"][0].update(port=8002),
        "8002 is not of type 'string'",
    ),
    "PodMonitor endpoints misspelt": (
        "overlays/prod",
        "PodMonitor",
        lambda o: o["spec"].update(podMetricEndpoints=o["spec"].pop("podMetricsEndpoints")),
        "'podMetricEndpoints' was unexpected",
    ),
    "PrometheusRule without severity": (
        "overlays/prod",
        "PrometheusRule",
        lambda o: o["spec"]["groups"][0]["rules"][0]["labels"].pop("severity"),
        "'severity' is a required property",
    ),
}


@pytest.mark.parametrize("mistake", sorted(HAND_MISTAKES))
def test_hand_schemas_reject_planted_mistakes(all_objects: list[tuple[str, Obj]], mistake: str) -> None:
    render, kind, plant, reported = HAND_MISTAKES[mistake]
    obj = first(all_objects, render, kind)
    assert schema_errors(hand_validator(kind), obj) == []
    plant(obj)
    assert any(reported in error for error in schema_errors(hand_validator(kind), obj))


def test_every_hand_schema_is_exercised(all_objects: list[tuple[str, Obj]]) -> None:
    assert {kind for _, kind, _, _ in HAND_MISTAKES.values()} == set(HAND_SCHEMAS)
    assert of_kind([obj for _, obj in all_objects], "ServiceMonitor") == []
