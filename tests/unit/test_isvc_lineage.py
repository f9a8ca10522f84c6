"""The lineage labels and annotations on an InferenceService: the exact keys written, and reading them back."""

from __future__ import annotations

from typing import Any

import pytest

from inference_services.builder import build_inference_service, to_document
from inference_services.config import parse_config
from serving_core.isvc_lineage import IsvcLineage, model_label, read, stamp
from serving_core.kube_objects import ObjectMeta

DIGEST = "sha256:" + "0" * 64
FULL = IsvcLineage(model_name="fraud", model_version="7", run_id="abc", digest=DIGEST, pipeline_run="run-1")


def test_stamp_writes_the_exact_keys_in_order() -> None:
    metadata = ObjectMeta()

    stamp(metadata, FULL)

    assert metadata == {
        "labels": {
            "aiserving.creativeflow.ai/model-name": "fraud",
            "aiserving.creativeflow.ai/model-version": "7",
        },
        "annotations": {
            "aiserving.creativeflow.ai/run-id": "abc",
            "aiserving.creativeflow.ai/model-digest": DIGEST,
            "aiserving.creativeflow.ai/pipeline-run": "run-1",
        },
    }
    # Rendered manifests keep insertion order, so the order is part of the output.
    assert list(metadata["annotations"]) == [
        "aiserving.creativeflow.ai/run-id",
        "aiserving.creativeflow.ai/model-digest",
        "aiserving.creativeflow.ai/pipeline-run",
    ]


def test_stamp_adds_to_existing_labels_and_skips_what_is_unknown() -> None:
    metadata = ObjectMeta(labels={"team": "risk"}, annotations={"serving.kserve.io/deploymentMode": "Serverless"})

    stamp(metadata, IsvcLineage(model_name="fraud", model_version="", run_id="", digest=None))

    assert metadata == {
        "labels": {
            "team": "risk",
            "aiserving.creativeflow.ai/model-name": "fraud",
            "aiserving.creativeflow.ai/model-version": "",
        },
        "annotations": {"serving.kserve.io/deploymentMode": "Serverless"},
    }


def test_stamp_then_read_round_trips() -> None:
    metadata = ObjectMeta(name="fraud")
    stamp(metadata, FULL)

    assert read({"metadata": metadata}) == FULL


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"metadata": {"name": "fraud"}},
        {"metadata": {"name": "fraud", "labels": None, "annotations": None}},
        {"metadata": {"labels": {"app.kubernetes.io/managed-by": "aiserving"}, "annotations": {}}},
    ],
)
def test_reading_a_document_without_lineage_gives_all_none(document: dict[str, Any]) -> None:
    assert read(document) == IsvcLineage(
        model_name=None, model_version=None, run_id=None, digest=None, pipeline_run=None
    )


def test_reading_labels_without_annotations() -> None:
    document = {"metadata": {"labels": {"aiserving.creativeflow.ai/model-version": "3"}}}

    assert read(document) == IsvcLineage(model_version="3")


def test_the_builder_stamps_what_read_returns() -> None:
    config = parse_config(
        {
            "name": "fraud",
            "model_format": "triton",
            "storage_uri": "s3://models/fraud/7",
            "lineage": {
                "model_name": "fraud",
                "model_version": "7",
                "run_id": "abc",
                "digest": DIGEST,
                "pipeline_run": "run-1",
            },
        }
    )

    document = to_document(build_inference_service(config, "ml"))

    assert read(document) == FULL
    assert document["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "aiserving",
        "aiserving.creativeflow.ai/model-name": "fraud",
        "aiserving.creativeflow.ai/model-version": "7",
    }


@pytest.mark.parametrize(
    ("value", "label"),
    [
        ("fraud", "fraud"),
        ("fraud det", "fraud-det"),
        ("team/fraud:v2", "team-fraud-v2"),
        ("-fraud_", "fraud"),
        ("a" * 70, "a" * 63),
        ("a" * 62 + "/b", "a" * 62),
    ],
)
def test_model_label_makes_a_valid_label_value(value: str, label: str) -> None:
    assert model_label(value) == label
