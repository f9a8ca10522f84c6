"""Step: verify the package in its real runtime before any image is built."""

from __future__ import annotations

from pathlib import Path

from aiserving.steps.artifacts import ArtifactLike
from model_packaging.verify import RuntimeServices, verify_package
from serving_core.errors import InvalidInputError


def verify_step(*, model: ArtifactLike, package: ArtifactLike, report: ArtifactLike) -> str:
    """Run every check the runtime allows here; fail the step when one fails.

    Raises:
        InvalidInputError: a check failed (the report artifact lists which and why).
    """
    with RuntimeServices() as services:
        result = verify_package(Path(package.path), services, model=model.path)
    table = result.table()
    Path(report.path).parent.mkdir(parents=True, exist_ok=True)
    Path(report.path).write_text(f"# Verification of {result.runtime} package\n\n```\n{table}\n```\n", encoding="utf-8")
    print(table)
    if not result.passed:
        raise InvalidInputError(
            f"the {result.runtime} package failed verification:\n{table}",
            hint="fix the model or the packaging options; nothing was pushed or deployed",
        )
    skipped = any(check.status == "skipped" for check in result.checks)
    return "passed-with-skips" if skipped else "passed"
