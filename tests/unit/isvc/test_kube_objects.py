"""The typed views of an InferenceService document: missing or null parts read as empty."""

from __future__ import annotations

from typing import Any

import pytest

from serving_core.kube_objects import (
    annotations_of,
    conditions,
    labels_of,
    metadata,
    predictor_spec,
    predictor_status,
    spec,
    status,
)

LIVE: dict[str, Any] = {
    "metadata": {"name": "fraud", "labels": {"team": "risk"}, "annotations": {"note": "x"}},
    "spec": {"predictor": {"name": "stable", "canaryTrafficPercent": 10}},
    "status": {
        "conditions": [{"type": "Ready", "status": "True"}],
        "components": {"predictor": {"latestReadyRevision": "fraud-predictor-00002"}},
    },
}


def test_views_read_the_document() -> None:
    assert (
        metadata(LIVE),
        labels_of(LIVE),
        annotations_of(LIVE),
        spec(LIVE),
        predictor_spec(LIVE),
        status(LIVE),
        conditions(LIVE),
        predictor_status(LIVE),
    ) == (
        {"name": "fraud", "labels": {"team": "risk"}, "annotations": {"note": "x"}},
        {"team": "risk"},
        {"note": "x"},
        {"predictor": {"name": "stable", "canaryTrafficPercent": 10}},
        {"name": "stable", "canaryTrafficPercent": 10},
        LIVE["status"],
        [{"type": "Ready", "status": "True"}],
        {"latestReadyRevision": "fraud-predictor-00002"},
    )


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"metadata": None, "spec": None, "status": None},
        {"metadata": {"labels": None, "annotations": None}, "spec": {"predictor": None},
         "status": {"conditions": None, "components": None}},
        {"status": {"components": {"predictor": None}}},
    ],
)  # fmt: skip
def test_missing_or_null_parts_read_as_empty(document: dict[str, Any]) -> None:
    assert (
        labels_of(document),
        annotations_of(document),
        predictor_spec(document),
        conditions(document),
        predictor_status(document),
    ) == ({}, {}, {}, [], {})
