"""The built wheel works installed outside the checkout: ``render``, ``compile`` and ``verify`` find their data.

The package comes from the wheel (installed ``--no-deps`` into a fresh venv); its dependencies come from this
virtualenv's site-packages through a ``.pth`` line, so the test needs no network. The commands run with the
working directory outside the checkout and no ``PYTHONPATH`` or ``KSERVE_CRD_DIR``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import venv
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO_ROOT

PACKAGES = ("aiserving", "inference_services", "pipelines", "components", "model_packaging", "model_wrappers")
SAVE_MODEL = textwrap.dedent(
    """
    import sys

    import mlflow
    import numpy as np

    class ScaledSum(mlflow.pyfunc.PythonModel):  # defined in __main__, so pickled by value
        def predict(self, context, model_input, params=None):
            return np.asarray(model_input, dtype=np.float64).sum(axis=1) * 3.0

    example = np.random.default_rng(7).normal(size=(3, 3))
    mlflow.pyfunc.save_model(sys.argv[1], python_model=ScaledSum(), input_example=example, pip_requirements=[])
    """
)


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def source_copy(destination: Path) -> Path:
    """The files git would see (tracked and untracked-not-ignored), so no build/ or egg-info leaks in."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        source = REPO_ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A fresh venv with the wheel installed, and the environment to run its commands in."""
    root = tmp_path_factory.mktemp("installed-wheel")
    source = source_copy(root / "src")
    wheels = root / "wheels"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", "-q"]
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "KSERVE_CRD_DIR")}
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(source)], root, env, 180)
    [wheel] = wheels.glob("creativeflow_ai_serving-*.whl")
    target = root / "venv"
    venv.create(target, with_pip=False)
    python = target / "bin" / "python"
    run([*pip, "--python", str(python), "install", "--no-deps", str(wheel)], root, env)
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], root, env).strip())
    (site / "zz_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    env["PATH"] = os.pathsep.join([str(target / "bin"), env.get("PATH", "")])
    return target, env


def test_the_installed_package_comes_from_the_venv(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    target, env = installed
    script = "import importlib, sys; [print(importlib.import_module(p).__file__) for p in sys.argv[1:]]"
    paths = run([str(target / "bin" / "python"), "-c", script, *PACKAGES], tmp_path, env).split()
    assert len(paths) == len(PACKAGES)
    for path in paths:
        assert Path(path).is_relative_to(target), path
        assert not Path(path).is_relative_to(REPO_ROOT), path


def test_render_validates_against_the_shipped_crds(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    target, env = installed
    example = yaml.safe_load((REPO_ROOT / "examples" / "deployments" / "cpu-only.yaml").read_text(encoding="utf-8"))
    for version in ("0.14", "0.21"):  # the v0.14.0 and v0.20.0 copies
        config = tmp_path / f"cpu-only-{version}.yaml"
        config.write_text(yaml.safe_dump({**example, "kserve_version": version}), encoding="utf-8")
        rendered = yaml.safe_load(run([str(target / "bin" / "aiserving"), "render", config.name], tmp_path, env))
        assert rendered["kind"] == "InferenceService"
        assert rendered["metadata"]["name"] == example["name"]


def test_compile_writes_every_pipeline(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    target, env = installed
    run([str(target / "bin" / "aiserving"), "compile", "--out", str(tmp_path / "compiled")], tmp_path, env)
    written = sorted(path.name for path in (tmp_path / "compiled").glob("*.yaml"))
    shipped = sorted(path.name for path in (REPO_ROOT / "pipelines" / "compiled").glob("*.yaml"))
    assert written == shipped
    # The compiled YAML ships too, so run/submit find a pipeline by name in an installed package.
    script = "from aiserving.pipeline_ops.catalog import compiled_path; print(compiled_path('deploy-model'))"
    path = Path(run([str(target / "bin" / "python"), "-c", script], tmp_path, env).strip())
    assert path.is_relative_to(target)
    assert path.is_file()


def test_package_and_verify_a_python_wrapper_model(installed: tuple[Path, dict[str, str]], tmp_path: Path) -> None:
    target, env = installed
    run([str(target / "bin" / "python"), "-c", SAVE_MODEL, "model"], tmp_path, env)
    aiserving = str(target / "bin" / "aiserving")
    run([aiserving, "package", "--runtime", "python", "--out", "package", "model"], tmp_path, env)
    report = run([aiserving, "verify", "package"], tmp_path, env, timeout=180)
    assert re.search(r"^served by model_wrappers \(KServe ModelServer\) +PASSED", report, re.MULTILINE), report
    assert re.search(r"^output output_0 +PASSED", report, re.MULTILINE), report
