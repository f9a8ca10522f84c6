"""Every runtime packages and verifies inside the components image, the way a pipeline task does it.

The models are real MLflow model directories (tests/support/packaging_models.py), mounted into the
container; `aiserving package` and `aiserving verify` run there as the image's user, with the image's own
torch, ONNX, TensorFlow, Java + TorchServe and tritonserver. A runtime check that cannot run in the
image would show as skipped, which the test refuses (only the skips listed in ALLOWED_SKIPS, which
happen on any machine, pass).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.support.containers import ContainerTools

# The components image is built in the background from the start of the run (tests/conftest.py); these tests
# run last and wait for it: cold, the build takes minutes; warm, seconds.
pytestmark = [pytest.mark.timeout(2400), pytest.mark.cluster_path]

# runtime -> (model in packaging_models, the verify row that proves the runtime itself ran the package)
CASES = {
    "triton": ("onnx-regressor", "config.pbtxt parsed by tritonserver"),
    "torchserve": ("pytorch-mlp", "served by TorchServe"),
    "tfserving": ("keras-sequential", "SavedModel 1/ loaded by TensorFlow"),
    "python": ("sklearn-iris", "served by model_wrappers (KServe ModelServer)"),
}


# Skips that are not about the image: these servers are not run anywhere in the tests (docs/architecture.md).
ALLOWED_SKIPS = {
    "model loaded by Triton itself",  # nvidia-pytriton's tritonserver has only the python backend
    "served by TF Serving",  # tensorflow_model_server ships in TF Serving's image, not on PyPI
}


@pytest.fixture(scope="module")
def workdir(packaging_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four models, in a directory the image's user (UID 1000) can read and write."""
    root = tmp_path_factory.mktemp("components-image")
    root.chmod(0o777)
    for model, _ in CASES.values():
        shutil.copytree(packaging_models[model], root / "models" / model)
    for path in [root / "models", *(root / "models").rglob("*")]:
        path.chmod(0o777 if path.is_dir() else 0o666)
    return root


@pytest.mark.parametrize("runtime", list(CASES))
def test_runtime_packages_and_verifies_inside_the_components_image(
    runtime: str, components_image: str, container_tools: ContainerTools, workdir: Path
) -> None:
    model, runtime_row = CASES[runtime]
    script = (
        f"aiserving package /work/models/{model} --runtime {runtime} --instance-kind cpu --out /work/{runtime}"
        f" && aiserving verify /work/{runtime}"
    )
    result = container_tools.run(
        "podman",
        "run",
        "--rm",
        f"--volume={workdir}:/work",
        "--entrypoint=/bin/sh",
        components_image,
        "-c",
        script,
        timeout_s=900,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    statuses = verify_statuses(result.stdout)
    assert statuses.get(runtime_row) == "PASSED", output[-4000:]
    skipped = {check for check, status in statuses.items() if status == "SKIPPED"}
    assert skipped <= set(ALLOWED_SKIPS), output[-4000:]


def verify_statuses(stdout: str) -> dict[str, str]:
    """CHECK -> STATUS from the table `aiserving verify` prints (columns two or more spaces apart)."""
    statuses = {}
    for line in stdout.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) >= 2 and cells[1] in ("PASSED", "FAILED", "SKIPPED"):
            statuses[cells[0]] = cells[1]
    return statuses
