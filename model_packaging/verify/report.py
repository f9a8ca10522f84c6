"""Results of a verification: one row per check, printed as a table."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Status = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class CheckResult:
    """One check: what was checked, how it went and why."""

    check: str
    status: Status
    detail: str


@dataclass
class VerifyReport:
    """All checks of one package; it fails when any check failed."""

    package: str
    runtime: str
    checks: list[CheckResult] = field(default_factory=list)

    def add(self, check: str, status: Status, detail: str) -> CheckResult:
        """Record a check and return it."""
        result = CheckResult(check, status, detail)
        self.checks.append(result)
        return result

    @property
    def skipped(self) -> list[CheckResult]:
        """The checks that could not run here (a runtime or a GPU missing), with why."""
        return [check for check in self.checks if check.status == "skipped"]

    @property
    def passed(self) -> bool:
        """No check failed and at least one passed."""
        return all(check.status != "failed" for check in self.checks) and any(
            check.status == "passed" for check in self.checks
        )

    def table(self) -> str:
        """A plain-text table: check, status, detail."""
        rows = [("CHECK", "STATUS", "DETAIL"), *((c.check, c.status.upper(), c.detail) for c in self.checks)]
        check_width = max(len(row[0]) for row in rows)
        status_width = max(len(row[1]) for row in rows)
        lines = [f"{row[0]:<{check_width}}  {row[1]:<{status_width}}  {row[2]}" for row in rows]
        verdict = "PASSED" if self.passed else "FAILED"
        return "\n".join([f"package {self.package} ({self.runtime}): {verdict}", *lines])
