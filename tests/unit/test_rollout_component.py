"""The progressive_rollout component's wiring, through python_func: refusals happen before any connection."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from components.progressive_rollout import progressive_rollout
from serving_core.errors import InvalidInputError, UnsupportedError
from tests.support.artifacts import FakeArtifact


def _call(tmp_path: Path, **changes: Any) -> str:
    arguments: dict[str, Any] = {
        "isvc_name": "iris", "namespace": "ai", "target": "cluster", "pipeline_run": "run-1", "steps": "5,10",
        "shadow": False, "shadow_sink_url": "", "prometheus_url": "", "analysis": {}, "warmup_s": 60.0,
        "step_min_duration_s": 300.0, "failure_limit": 1, "undecided_policy": "pause", "dry_run": False,
        "report": FakeArtifact(str(tmp_path / "report.md")), "audit": FakeArtifact(str(tmp_path / "audit.json")),
    }  # fmt: skip
    result: str = progressive_rollout.python_func(**{**arguments, **changes})
    return result


def test_render_target_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedError, match="target render has none"):
        _call(tmp_path, target="render")


def test_bad_steps_are_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="steps must rise"):
        _call(tmp_path, steps="50,10")
    assert not (tmp_path / "report.md").exists()
