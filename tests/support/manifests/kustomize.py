"""Render kustomizations with a kubectl/kustomize that understands Components (kustomize v4+)."""

from __future__ import annotations

import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import yaml

Obj = dict[str, Any]

_KUSTOMIZE_VERSION = re.compile(r"Kustomize Version: v(\d+)\.")


class KustomizeUnavailableError(RuntimeError):
    """No kubectl with kustomize v4+ and no standalone kustomize on the PATH."""


@cache
def kustomize_command() -> tuple[str, ...]:
    """Detect, not assume: kubectl's built-in kustomize if it is v4+, else a standalone kustomize.

    Debian's kubernetes-client (kubectl 1.20, kustomize v2) rejects components and inline patches,
    so an old kubectl must not be used silently.
    """
    kubectl = shutil.which("kubectl")
    if kubectl is not None:
        version = subprocess.run(
            [kubectl, "version", "--client"], capture_output=True, text=True, check=False, timeout=30
        ).stdout
        match = _KUSTOMIZE_VERSION.search(version)
        if match is not None and int(match.group(1)) >= 4:
            return (kubectl, "kustomize")
    standalone = shutil.which("kustomize")
    if standalone is not None:
        return (standalone, "build")
    raise KustomizeUnavailableError(
        "no kubectl with kustomize v4+ and no kustomize on the PATH; install the kubectl package "
        "(google-cloud-cli repo) or a kustomize v5 binary"
    )


def render(directory: Path) -> list[Obj]:
    """Build ``directory`` and return its objects in output order."""
    completed = subprocess.run(
        [*kustomize_command(), str(directory)], capture_output=True, text=True, check=False, timeout=120
    )
    if completed.returncode != 0:
        raise RuntimeError(f"kustomize build of {directory} failed:\n{completed.stderr}")
    return [obj for obj in yaml.safe_load_all(completed.stdout) if obj]
