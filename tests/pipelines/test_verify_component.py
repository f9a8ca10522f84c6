"""verify-package fails when a runtime check cannot run, unless the pipeline allows skipping it.

A TF Serving package is the case that always has such a check: verify never starts TF Serving (it loads the
SavedModel in TensorFlow instead), so "served by TF Serving" is skipped on every machine.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from components.verify_package import verify_package
from model_packaging import package_model
from serving_core.errors import UnsupportedError
from tests.support.artifacts import FakeArtifact
from tests.support.packaging_models import save_keras_sequential


@pytest.fixture(scope="module")
def tfserving_package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A Keras model and its TF Serving package."""
    root = tmp_path_factory.mktemp("verify-component")
    model = save_keras_sequential(root / "model")
    package_model(str(model), "tfserving", root / "package", instance_kind="cpu")
    return model, root / "package"


def _verify(model: Path, package: Path, report: Path, *, allow_skipped_checks: bool) -> str:
    result: str = verify_package.python_func(
        model=FakeArtifact(str(model)), package=FakeArtifact(str(package)), report=FakeArtifact(str(report)),
        allow_skipped_checks=allow_skipped_checks,
    )  # fmt: skip
    return result


def test_a_check_that_cannot_run_fails_the_step_by_default(
    tfserving_package: tuple[Path, Path], tmp_path: Path
) -> None:
    model, package = tfserving_package
    report = tmp_path / "report.md"

    with pytest.raises(UnsupportedError) as caught:
        _verify(model, package, report, allow_skipped_checks=False)

    assert caught.value.message.startswith(
        "the tfserving package could not be verified completely: 1 check could not run here: served by TF Serving ("
    )
    assert caught.value.hint == (
        "run verify where the runtime can run (the components image carries them), or set the pipeline input "
        "allow_skipped_checks=true to accept the skipped checks"
    )
    text = report.read_text()
    assert re.search(r"\nSavedModel 1/ loaded by TensorFlow +PASSED ", text)
    assert "Skipped: served by TF Serving. Skipping is not allowed (allow_skipped_checks=false): FAILED." in text


def test_skipping_allowed_by_the_pipeline_passes_and_says_so(
    tfserving_package: tuple[Path, Path], tmp_path: Path
) -> None:
    model, package = tfserving_package
    report = tmp_path / "report.md"

    assert _verify(model, package, report, allow_skipped_checks=True) == "passed-with-skips"

    text = report.read_text()
    assert re.search(
        r"\nserved by TF Serving +SKIPPED +(verify does not start TF Serving|no tensorflow_model_server)", text
    )
    assert "Skipped: served by TF Serving. Skipping was allowed (allow_skipped_checks=true)." in text
