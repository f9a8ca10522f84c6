from pathlib import Path

from aiserving.steps.report import report_step
from tests.support.artifacts import FakeArtifact

EXPECTED = """# Deployment of fraud version 7

## Lineage

| | |
|---|---|
| model | fraud v7 |
| aliases | champion |
| run id | r1 |
| model id | m-1 |
| content digest | sha256:abc |
| tracking URI | http://mlflow:5000 |

## Package and image

| | |
|---|---|
| runtime | triton |
| model format | onnx |
| protocol | v2 |
| package digest | sha256:def |
| image | reg/m@sha256:123 |

## InferenceService

| | |
|---|---|
| name | ai/fraud |
| target | cluster |
| mode | knative |
| URL | http://fraud.ai.example.com |
| GPU resources | nvidia.com/gpu: 1 |
| canary percent | 10 |
| revision | fraud-predictor-00002 |

### Traffic

| revision | tag | percent |
|---|---|---|
| fraud-predictor-00002 | latest | 10% |
| fraud-predictor-00001 | prev | 90% |
"""


def test_report_lists_lineage_image_gpu_and_traffic(tmp_path: Path) -> None:
    model = FakeArtifact(
        "m",
        {
            "model_name": "fraud",
            "model_version": "7",
            "aliases": ["champion"],
            "run_id": "r1",
            "model_id": "m-1",
            "content_digest": "sha256:abc",
            "tracking_uri": "http://mlflow:5000",
        },
    )
    package = FakeArtifact(
        "p", {"runtime": "triton", "model_format": "onnx", "protocol_version": "v2", "package_digest": "sha256:def"}
    )
    service = FakeArtifact("s", {
        "name": "fraud", "namespace": "ai", "target": "cluster", "mode": "knative", "url": "http://fraud.ai.example.com",
        "gpu_resources": "nvidia.com/gpu: 1", "canary_percent": 10, "revision": "fraud-predictor-00002",
        "traffic": [{"revision": "fraud-predictor-00002", "tag": "latest", "percent": 10},
                    {"revision": "fraud-predictor-00001", "tag": "prev", "percent": 90}],
    })  # fmt: skip
    report = FakeArtifact(str(tmp_path / "report.md"))
    report_step(model, package, "reg/m@sha256:123", service, report)
    assert (tmp_path / "report.md").read_text() == EXPECTED
