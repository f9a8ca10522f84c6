"""``aiserving demo`` as a new user sees it: a short story on stdout, the logs in a file, the report as a page.

The demo runs for real (MLflow server, the KFP local runner, the wrapper server); its page is opened in
Debian's Chromium, headless, and the DOM it builds is checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.conftest import REPO_ROOT
from tests.support.tools import require_tools

# deploy-model's tasks, the exit handler's rollback included.
TASKS = (
    "resolve-model",
    "package-model",
    "verify-package",
    "build-image",
    "deploy-inference-service",
    "deployment-report",
    "rollback-on-failure",
)
MAX_LINES = 60


@dataclass(frozen=True)
class DemoRun:
    stdout: str
    stderr: str
    cwd: Path


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """One ``aiserving demo`` for the module, run from a fresh folder as ``make demo`` runs it."""
    cwd = tmp_path_factory.mktemp("demo")
    # The working tree, not whichever checkout the shared virtualenv was installed from.
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run(
        [sys.executable, "-m", "aiserving", "demo", "--state-dir", ".aiserving"],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, f"demo failed:\n{done.stdout}\n{done.stderr}"
    return DemoRun(done.stdout, done.stderr, cwd)


def test_stdout_is_a_short_story_ending_with_the_summary_and_the_report_page(demo_run: DemoRun) -> None:
    lines = demo_run.stdout.splitlines()
    assert len(lines) <= MAX_LINES, demo_run.stdout
    assert demo_run.stderr == ""
    for task in TASKS:
        [line] = [line for line in lines if line.split()[:1] == [task]]
        assert "✓ succeeded" in line, line
    assert "deploy-model: 7 tasks: 7 succeeded" in demo_run.stdout
    assert [line.split()[0] for line in lines if line.startswith("Next ")] == ["Next"] * 3
    summary = lines.index("Summary")
    assert [line.split()[0] for line in lines[summary + 1 :]] == [
        "model", "package", "image", "manifest", "report", "report",
    ]  # fmt: skip
    assert lines[-1].startswith("  report page  file:///")
    # The runner's stream and its warnings for notebook users are in the log, not on the screen.
    assert "Executing task" not in demo_run.stdout
    assert "no effect in the current local runner" not in demo_run.stdout
    [log] = demo_run.cwd.glob(".aiserving/kfp-local/*/demo.log")
    assert lines[0].split()[:2] == ["Log", str(log.relative_to(demo_run.cwd))]
    text = log.read_text()
    assert "Executing task 'resolve-model'" in text
    assert "no effect in the current local runner" in text


class _Dom(HTMLParser):
    """Headings, tables and images of a DOM dump."""

    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.tables = 0
        self.images: list[dict[str, str | None]] = []
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h1", "h2", "h3"):
            self._heading = []
        elif tag == "table":
            self.tables += 1
        elif tag == "img":
            self.images.append(dict(attrs))

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "h2", "h3") and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None


def test_the_report_page_renders_in_chromium_with_headings_tables_and_figures(demo_run: DemoRun) -> None:
    require_tools("chromium")
    page = demo_run.stdout.splitlines()[-1].split()[-1]
    assert Path(urlparse(page).path).is_file()
    dumped = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    dom = _Dom()
    dom.feed(dumped)
    assert dom.headings == [
        "Deployment of demo-iris-classifier version 1", "Lineage", "Package and image", "InferenceService", "Traffic",
    ]  # fmt: skip
    assert dom.tables == 3
    [chain] = dom.images
    assert (chain["src"] or "").startswith("data:image/svg+xml;base64,")
    assert "demo-iris-classifier v1" in (chain["alt"] or "")
