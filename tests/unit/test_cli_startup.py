"""The CLI starts without the heavy libraries: each command imports what it uses in its handler.

MLflow alone takes over a second to import; `aiserving --help` and the commands that never talk to
the registry or a cluster should not pay for it. Each check runs a fresh interpreter on this checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from aiserving.cli.main import FEATURE_MODULES
from tests.conftest import REPO_ROOT

# Top-level packages that take a noticeable part of a second (or several seconds) to import.
HEAVY = ("mlflow", "kubernetes", "kserve", "kfp", "kfp_server_api", "torch", "tensorflow", "onnx", "onnxruntime")


def _python(*args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=environment, timeout=120, check=True
    )


def _imported_packages(importtime_log: str) -> set[str]:
    # Lines of -X importtime: "import time: SELF | CUMULATIVE | <indent>dotted.name".
    return {line.rsplit("|", 1)[1].strip().split(".")[0] for line in importtime_log.splitlines() if "|" in line}


@pytest.mark.parametrize("module", [module.__name__ for module in FEATURE_MODULES])
def test_feature_module_registers_its_commands_without_heavy_imports(module: str) -> None:
    probe = (
        "import argparse, importlib, json, sys\n"
        f"importlib.import_module({module!r}).register(argparse.ArgumentParser().add_subparsers())\n"
        f"print(json.dumps(sorted(set({HEAVY!r}) & set(sys.modules))))"
    )
    assert json.loads(_python("-c", probe).stdout) == []


def test_help_imports_no_heavy_library() -> None:
    result = _python("-X", "importtime", "-m", "aiserving", "--help")
    assert "resolve" in result.stdout  # the help lists the commands
    assert sorted(_imported_packages(result.stderr) & set(HEAVY)) == []
