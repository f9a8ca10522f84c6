"""The verify step's verdict: a failed check fails it, a check that could not run fails it unless allowed."""

from __future__ import annotations

import pytest

from aiserving.steps.verify import skipped_note, verdict
from model_packaging.verify.report import VerifyReport
from serving_core.errors import InvalidInputError, UnsupportedError


def _report(*statuses: str) -> VerifyReport:
    report = VerifyReport("/pkg", "python")
    report.add("MLflow pyfunc reference", "passed", "4 rows")
    for index, status in enumerate(statuses):
        report.add(f"check {index}", status, f"why {index}")  # type: ignore[arg-type]
    return report


def test_all_checks_run_and_pass() -> None:
    assert (verdict(_report("passed"), False), skipped_note(_report("passed"), False)) == ("passed", "")


def test_skipped_checks_fail_unless_allowed() -> None:
    report = _report("passed", "skipped", "skipped")

    with pytest.raises(UnsupportedError) as caught:
        verdict(report, False)

    assert caught.value.message == (
        "the python package could not be verified completely: 2 checks could not run here: "
        "check 1 (why 1); check 2 (why 2)"
    )
    assert skipped_note(report, False) == (
        "Skipped: check 1, check 2. Skipping is not allowed (allow_skipped_checks=false): FAILED."
    )
    assert verdict(report, True) == "passed-with-skips"
    assert skipped_note(report, True) == "Skipped: check 1, check 2. Skipping was allowed (allow_skipped_checks=true)."


def test_a_failed_check_fails_even_when_skipping_is_allowed() -> None:
    with pytest.raises(InvalidInputError, match="the python package failed verification"):
        verdict(_report("failed", "skipped"), True)
