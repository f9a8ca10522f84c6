"""The rollout report's HTML page renders in a real browser (Debian's Chromium, headless) with its plot."""

from __future__ import annotations

import subprocess
from html.parser import HTMLParser
from pathlib import Path

from aiserving.steps.rollout_report import write_rollout_report
from tests.support.tools import require_tools
from tests.unit.test_rollout_report import _state


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self.images: list[str] = []
        self.rows = 0
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("h1", "h2"):
            self._heading = []
        elif tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        elif tag == "tr":
            self.rows += 1

    def handle_data(self, data: str) -> None:
        if self._heading is not None:
            self._heading.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("h1", "h2") and self._heading is not None:
            self.headings.append("".join(self._heading).strip())
            self._heading = None


def test_the_report_page_renders_with_its_plot_and_decisions(tmp_path: Path) -> None:
    require_tools("chromium")
    page = write_rollout_report(_state(), [], tmp_path / "report.md", tmp_path / "audit.json")
    dumped = subprocess.run(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    dom = _Dom()
    dom.feed(dumped)
    assert dom.headings == ["Progressive rollout of ai/iris", "Decisions"]
    [plot] = dom.images
    assert plot.startswith("data:image/png;base64,")
    assert dom.rows == 8 + 1 + 1 + 3  # summary header and rows, decisions header and one row per decision
