import base64
import re
from pathlib import Path

from aiserving.steps.report import report_step
from aiserving.steps.report_page import markdown_page
from tests.support.artifacts import FakeArtifact

# Figures are SVG data URIs; the text compares with each one as its alt text and checks its SVG apart.
IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\(data:image/svg\+xml;base64,(?P<svg>[A-Za-z0-9+/=]+)\)")

EXPECTED = """# Deployment of fraud version 7

[image: Chain: MLflow model fraud v7 → package triton, onnx → image sha256:123 → InferenceService ai/fraud]

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

[image: Traffic split: fraud-predictor-00002 10%, fraud-predictor-00001 90%]
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
    report = FakeArtifact(str(tmp_path / "report"))
    report_step(model, package, "reg/m@sha256:123", service, report)

    markdown = (tmp_path / "report").read_text()
    assert IMAGE.sub(lambda image: f"[image: {image['alt']}]", markdown) == EXPECTED
    chain, split = (base64.b64decode(image["svg"]).decode() for image in IMAGE.finditer(markdown))
    assert chain.startswith("<svg")
    assert "fraud v7" in chain
    assert "ai/fraud" in chain
    assert split.startswith("<svg")
    assert "fraud-predictor-00001 90%" in split
    assert (tmp_path / "report.html").read_text() == markdown_page(markdown)


def test_the_page_is_self_contained_html_with_the_reports_tables_and_figures() -> None:
    markdown = "# Run\n\n![figure](data:image/svg+xml;base64,PHN2Zy8+)\n\n| a | b |\n|---|---|\n| <b>x</b> | y |\n"
    page = markdown_page(markdown)
    assert "<title>Run</title>" in page
    assert "<h1>Run</h1>" in page
    assert '<img src="data:image/svg+xml;base64,PHN2Zy8+" alt="figure" />' in page
    assert "<td>&lt;b&gt;x&lt;/b&gt;</td>" in page  # metadata cannot inject markup
    assert "<style>" in page
    assert "<link" not in page
    assert "<script" not in page
