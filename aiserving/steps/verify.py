"""Step: verify the package in its real runtime before any image is built."""

from __future__ import annotations

from pathlib import Path

from aiserving.steps.artifacts import ArtifactLike
from model_packaging.verify import RuntimeServices, VerifyReport, verify_package
from serving_core.errors import InvalidInputError, UnsupportedError

ALLOW_SKIPS_INPUT = "allow_skipped_checks"


def _flag(value: bool) -> str:
    return f"{ALLOW_SKIPS_INPUT}={str(value).lower()}"


def skipped_note(result: VerifyReport, allow_skipped_checks: bool) -> str:
    """The report's last line: which checks were skipped and whether that was allowed; empty with none."""
    if not result.skipped:
        return ""
    names = ", ".join(check.check for check in result.skipped)
    if allow_skipped_checks:
        return f"Skipped: {names}. Skipping was allowed ({_flag(True)})."
    return f"Skipped: {names}. Skipping is not allowed ({_flag(False)}): FAILED."


def verdict(result: VerifyReport, allow_skipped_checks: bool) -> str:
    """``passed``, or ``passed-with-skips`` when skipping is allowed and some checks could not run.

    Raises:
        InvalidInputError: a check failed.
        UnsupportedError: a check could not run here and skipping is not allowed.
    """
    table = result.table()
    if not result.passed:
        raise InvalidInputError(
            f"the {result.runtime} package failed verification:\n{table}",
            hint="fix the model or the packaging options; nothing was pushed or deployed",
        )
    if not result.skipped:
        return "passed"
    if allow_skipped_checks:
        return "passed-with-skips"
    count = len(result.skipped)
    reasons = "; ".join(f"{check.check} ({check.detail})" for check in result.skipped)
    raise UnsupportedError(
        f"the {result.runtime} package could not be verified completely: {count} check"
        f"{'' if count == 1 else 's'} could not run here: {reasons}",
        hint="run verify where the runtime can run (the components image carries them), or set the pipeline "
        f"input {_flag(True)} to accept the skipped checks",
    )


def verify_step(
    *, model: ArtifactLike, package: ArtifactLike, report: ArtifactLike, allow_skipped_checks: bool = False
) -> str:
    """Run every check of the package's runtime; fail the step when one fails or, unless allowed, cannot run.

    Raises:
        InvalidInputError: a check failed (the report artifact lists which and why).
        UnsupportedError: a check could not run here and ``allow_skipped_checks`` is false.
    """
    with RuntimeServices() as services:
        result = verify_package(Path(package.path), services, model=model.path)
    table = result.table()
    note = skipped_note(result, allow_skipped_checks)
    Path(report.path).parent.mkdir(parents=True, exist_ok=True)
    Path(report.path).write_text(
        f"# Verification of {result.runtime} package\n\n```\n{table}\n```\n" + (f"\n{note}\n" if note else ""),
        encoding="utf-8",
    )
    print(table + (f"\n{note}" if note else ""))
    return verdict(result, allow_skipped_checks)
