"""Figures for run reports: small SVGs embedded as ``data:`` URIs, so a report is one self-contained file."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from xml.sax.saxutils import escape

_FONT = "font-family='sans-serif' font-size='12'"
_BOX_W, _BOX_H, _GAP = 180, 52, 36
_COLOURS = ("#2b6cb0", "#dd6b20", "#38a169", "#805ad5", "#718096")


def svg_data_uri(svg: str) -> str:
    """``svg`` as a base64 ``data:`` URI (browsers and the report renderer accept it in ``<img>``)."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def markdown_image(alt: str, svg: str) -> str:
    """A Markdown image of ``svg`` with ``alt`` text (brackets, which would end it, are dropped)."""
    return f"![{alt.replace('[', '(').replace(']', ')')}]({svg_data_uri(svg)})"


def chain_svg(stages: Sequence[tuple[str, str]]) -> str:
    """Boxes left to right joined by arrows, one per ``(title, detail)`` stage of a run."""
    width = len(stages) * (_BOX_W + _GAP) - _GAP + 2
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{_BOX_H + 2}' {_FONT}>",
        "<defs><marker id='a' markerWidth='8' markerHeight='8' refX='7' refY='4' orient='auto'>"
        "<path d='M0,0 L8,4 L0,8 z' fill='#4a5568'/></marker></defs>",
    ]
    for index, (title, detail) in enumerate(stages):
        x = 1 + index * (_BOX_W + _GAP)
        parts.append(
            f"<rect x='{x}' y='1' width='{_BOX_W}' height='{_BOX_H}' rx='6' fill='#edf2f7' stroke='#4a5568'/>"
            f"<text x='{x + _BOX_W / 2}' y='22' text-anchor='middle' font-weight='bold'>{escape(title)}</text>"
            f"<text x='{x + _BOX_W / 2}' y='40' text-anchor='middle'>{escape(_clip(detail))}</text>"
        )
        if index:
            parts.append(
                f"<line x1='{x - _GAP}' y1='{1 + _BOX_H / 2}' x2='{x - 2}' y2='{1 + _BOX_H / 2}' "
                "stroke='#4a5568' marker-end='url(#a)'/>"
            )
    parts.append("</svg>")
    return "".join(parts)


def split_svg(shares: Sequence[tuple[str, float]]) -> str:
    """One bar split into ``(label, percent)`` shares, with a legend under it."""
    width, bar_h = 560, 28
    # The legend sits in equal columns: a 10 % share is too narrow to carry its own label.
    column = width / max(len(shares), 1)
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{bar_h + 26}' {_FONT}>"]
    x = 0.0
    for index, (label, percent) in enumerate(shares):
        share = width * max(percent, 0.0) / 100
        colour = _COLOURS[index % len(_COLOURS)]
        legend = index * column
        parts.append(
            f"<rect x='{x:.1f}' y='0' width='{share:.1f}' height='{bar_h}' fill='{colour}'/>"
            f"<rect x='{legend:.1f}' y='{bar_h + 8}' width='10' height='10' fill='{colour}'/>"
            f"<text x='{legend + 14:.1f}' y='{bar_h + 17}'>{escape(_clip(f'{label} {percent:g}%', 40))}</text>"
        )
        x += share
    parts.append("</svg>")
    return "".join(parts)


def _clip(text: str, limit: int = 26) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
