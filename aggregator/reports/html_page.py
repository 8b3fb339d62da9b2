"""A self-contained HTML page for a person: a title, a note, and titled sections. Pure.

Inline CSS only: no script, font, image or style sheet is fetched, so the page opens from a
file, from a mail attachment or offline, and prints. Each report kind contributes sections
(air: aggregator.reports.air_render); a section's body is an HTML fragment the kind built with
`escape` for every value it did not write itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

__all__ = ["Section", "cell", "escape", "header_row", "page", "row"]

STYLE: Final = """
body { font: 14px/1.4 system-ui, "Noto Sans", "Noto Sans CJK SC", sans-serif; color: #222;
  margin: 24px auto; max-width: 1100px; padding: 0 16px; background: #fff; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ccc; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
p.note, .note { color: #555; font-size: 12px; }
table { border-collapse: collapse; margin: 6px 0 12px; }
table.figures th, table.figures td { border: 1px solid #ccc; padding: 3px 8px; text-align: right; }
table.figures th { background: #f4f4f4; text-align: center; }
table.figures td:first-child { text-align: left; white-space: nowrap; }
table.figures td.class { text-align: center; font-weight: 600; }
div.row { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
div.chart { max-width: 360px; }
table.calendar { display: inline-table; margin: 0 18px 14px 0; vertical-align: top; }
table.calendar caption { font-weight: 600; text-align: left; padding-bottom: 4px; }
table.calendar th { font-size: 11px; color: #666; width: 44px; }
table.calendar td { width: 44px; height: 38px; text-align: center; border: 2px solid #fff;
  font-size: 11px; line-height: 1.1; }
table.calendar td.none { background: #eee; color: #999; }
table.calendar td.out { background: #fff; }
table.calendar td b { display: block; font-size: 13px; }
.legend span { display: inline-block; padding: 2px 8px; margin: 0 4px 4px 0; font-size: 12px; }
"""


@dataclass(frozen=True, slots=True)
class Section:
    """One titled part of the page; `body` is an HTML fragment."""

    title: str
    body: str


def cell(text: str, colour: str = "", tag: str = "td", title: str = "") -> str:
    """One table cell holding `text` (escaped), on a background colour when given: a class or
    level cell of the water, noise and bloom tables."""
    attrs = f' class="class" style="background:{colour}"' if colour else ""
    if title:
        attrs += f' title="{escape(title)}"'
    return f"<{tag}{attrs}>{escape(text)}</{tag}>"


def header_row(*names: str) -> str:
    return row(*(cell(n, tag="th") for n in names))


def row(*cells: str) -> str:
    return "<tr>" + "".join(cells) + "</tr>"


def page(title: str, sections: Sequence[Section], note: str = "") -> str:
    """The whole page: <title> and <h1> from `title`, `note` under it, then the sections."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title>",
        f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    if note:
        parts.append(f'<p class="note">{escape(note)}</p>')
    for section in sections:
        parts.append(f"<section><h2>{escape(section.title)}</h2>\n{section.body}\n</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
