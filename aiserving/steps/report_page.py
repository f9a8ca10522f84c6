"""A run report as a self-contained HTML page, rendered from the report's own Markdown.

One source: the Markdown the Kubeflow UI shows is the text the page is rendered from, so the two
cannot drift. The page carries its CSS inline and its figures as ``data:`` URIs; it opens from a
file with no network.
"""

from __future__ import annotations

import html
import re
from pathlib import Path

from markdown_it import MarkdownIt

# The report's own figures: SVG (deployment reports) and PNG (matplotlib plots of rollout reports).
_FIGURE_DATA_URI = re.compile(r"^data:image/(svg\+xml|png);base64,[A-Za-z0-9+/=]+$")

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1a202c; max-width: 60rem;
       margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.6rem; border-bottom: 2px solid #2b6cb0; padding-bottom: .3rem; }
h2 { font-size: 1.25rem; margin-top: 2rem; color: #2b6cb0; }
h3 { font-size: 1.05rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; }
th, td { border: 1px solid #cbd5e0; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #edf2f7; }
td { font-family: ui-monospace, "DejaVu Sans Mono", monospace; font-size: .9rem; word-break: break-all; }
img { max-width: 100%; margin: .5rem 0; }
thead:not(:has(th:not(:empty))) { display: none; }
"""


class _ReportMarkdown(MarkdownIt):
    """CommonMark with tables; ``data:`` SVG and PNG images allowed, which the default link check refuses."""

    def __init__(self) -> None:
        # html=False: values in the report come from model metadata and must not inject markup.
        super().__init__("commonmark", {"html": False})
        self.enable("table")

    def validateLink(self, url: str) -> bool:
        """Allow base64 SVG and PNG data URIs (the report's own figures) and whatever markdown-it allows."""
        return bool(_FIGURE_DATA_URI.match(url)) or super().validateLink(url)


def markdown_page(markdown: str) -> str:
    """The HTML page for a report's Markdown; its title is the first heading."""
    heading = next((line[2:].strip() for line in markdown.splitlines() if line.startswith("# ")), "Report")
    body = _ReportMarkdown().render(markdown)
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<title>{html.escape(heading)}</title>\n<style>{_STYLE}</style>\n</head>\n"
        f"<body>\n{body}</body>\n</html>\n"
    )


def page_path(report_path: Path) -> Path:
    """Where the page of the report at ``report_path`` goes: beside it, ``.html`` appended."""
    return report_path.with_name(report_path.name + ".html")


def write_report(report_path: Path, markdown: str) -> Path:
    """Write the Markdown report to ``report_path`` and its page beside it; return the page's path."""
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(markdown, encoding="utf-8")
    page = page_path(report_path)
    page.write_text(markdown_page(markdown), encoding="utf-8")
    return page
