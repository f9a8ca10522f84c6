"""The lineage labels and annotations on an InferenceService: which model it serves and which run deployed it.

The builder stamps them; the alias check, the deploy step's "already deployed" check and the exit
handler's rollback read them back. Labels (selectable) carry the model name and version; annotations
carry the MLflow run, the lineage digest and the Kubeflow run that deployed it. Not to be confused
with ``mlflow_source.lineage``, the ``lineage.json`` record inside a downloaded model.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from serving_core.kube_objects import Document, ObjectMeta, annotations_of, labels_of

PREFIX = "aiserving.creativeflow.ai"
MODEL_NAME_LABEL = f"{PREFIX}/model-name"
MODEL_VERSION_LABEL = f"{PREFIX}/model-version"
RUN_ID_ANNOTATION = f"{PREFIX}/run-id"
MODEL_DIGEST_ANNOTATION = f"{PREFIX}/model-digest"
PIPELINE_RUN_ANNOTATION = f"{PREFIX}/pipeline-run"

_LABEL_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class IsvcLineage:
    """The lineage an InferenceService carries; None where it carries none."""

    model_name: str | None = None
    model_version: str | None = None
    run_id: str | None = None
    digest: str | None = None
    pipeline_run: str | None = None


def model_label(value: str) -> str:
    """A model name or version as a Kubernetes label value (what the name and version labels hold)."""
    return _LABEL_UNSAFE.sub("-", value)[:63].strip("-_.")


def stamp(metadata: ObjectMeta, lineage: IsvcLineage) -> None:
    """Add ``lineage`` to ``metadata``'s labels and annotations (created when absent).

    Labels are written whenever known (an empty label value is valid); annotations only when non-empty.
    The values are written as given: label values must already be valid (see :func:`model_label`).
    """
    written_labels = metadata.setdefault("labels", {})
    for key, label in ((MODEL_NAME_LABEL, lineage.model_name), (MODEL_VERSION_LABEL, lineage.model_version)):
        if label is not None:
            written_labels[key] = label
    written_annotations = metadata.setdefault("annotations", {})
    for key, annotation in (
        (RUN_ID_ANNOTATION, lineage.run_id),
        (MODEL_DIGEST_ANNOTATION, lineage.digest),
        (PIPELINE_RUN_ANNOTATION, lineage.pipeline_run),
    ):
        if annotation:
            written_annotations[key] = annotation


def read(document: Document) -> IsvcLineage:
    """The lineage stamped on an InferenceService document (all None when it has none)."""
    found_labels, found_annotations = labels_of(document), annotations_of(document)
    return IsvcLineage(
        model_name=found_labels.get(MODEL_NAME_LABEL),
        model_version=found_labels.get(MODEL_VERSION_LABEL),
        run_id=found_annotations.get(RUN_ID_ANNOTATION),
        digest=found_annotations.get(MODEL_DIGEST_ANNOTATION),
        pipeline_run=found_annotations.get(PIPELINE_RUN_ANNOTATION),
    )
