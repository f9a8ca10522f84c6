"""Which frameworks the server imports up front: torch only for models that may use it.

torch's import adds warning filters that slow every scikit-learn forest predict in the process
(``model_wrappers.loading.import_frameworks``). Each import check runs in a fresh interpreter,
since this test session may have imported torch already.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from model_wrappers.loading import may_use_torch
from tests.support.tools import skip_or_fail

_CHECK = (
    "import json, sys, warnings\n"
    "from pathlib import Path\n"
    "from model_wrappers.loading import import_frameworks\n"
    "import_frameworks(Path(sys.argv[1]))\n"
    "torch_filters = [f for f in warnings.filters if 'torch' in repr(f)]\n"
    "print(json.dumps({'torch': 'torch' in sys.modules, 'torch_filters': len(torch_filters)}))\n"
)


def _model_dir(root: Path, flavors: list[str], requirements: str | None = None) -> Path:
    root.mkdir()
    lines = ["flavors:", "  python_function:", "    loader_module: mlflow.sklearn"]
    lines += [f"  {flavor}: {{}}" for flavor in flavors]
    (root / "MLmodel").write_text("\n".join(lines) + "\n", encoding="utf-8")
    if requirements is not None:
        (root / "requirements.txt").write_text(requirements, encoding="utf-8")
    return root


def _imports_after_import_frameworks(model_dir: Path) -> dict[str, object]:
    output = subprocess.run(
        [sys.executable, "-c", _CHECK, str(model_dir)], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    result: dict[str, object] = json.loads(output.strip().splitlines()[-1])
    return result


def test_may_use_torch_reads_flavors_and_requirements(tmp_path: Path) -> None:
    cases = {
        "sklearn": (["sklearn"], "mlflow==3.17.2\nscikit-learn==1.7.2\n"),
        "pytorch": (["pytorch"], None),
        "custom-with-torch": ([], "mlflow==3.17.2\ntorch>=2.13 ; platform_system == 'Linux'\n"),
        "custom-torchvision-only": ([], "torchvision==0.28\n"),
        "no-requirements": ([], None),
    }
    answers = {
        name: may_use_torch(_model_dir(tmp_path / name, flavors, requirements), ["python_function", *flavors])
        for name, (flavors, requirements) in cases.items()
    }
    assert answers == {
        "sklearn": False,
        "pytorch": True,
        "custom-with-torch": True,
        "custom-torchvision-only": False,
        "no-requirements": False,
    }


@pytest.fixture(scope="module")
def torch_installed() -> None:
    if importlib.util.find_spec("torch") is None:
        skip_or_fail("torch is not installed: `pip install -c constraints.txt -e .[convert]`")


@pytest.mark.usefixtures("torch_installed")
def test_sklearn_model_leaves_torch_and_its_warning_filters_out(tmp_path: Path) -> None:
    model_dir = _model_dir(tmp_path / "model", ["sklearn"], "mlflow==3.17.2\n")
    assert _imports_after_import_frameworks(model_dir) == {"torch": False, "torch_filters": 0}


@pytest.mark.usefixtures("torch_installed")
def test_pytorch_model_imports_torch_on_the_calling_thread(tmp_path: Path) -> None:
    model_dir = _model_dir(tmp_path / "model", ["pytorch"])
    # torch's own filters come with it: the reason torch is left out when the model does not need it.
    assert _imports_after_import_frameworks(model_dir) == {"torch": True, "torch_filters": 2}
