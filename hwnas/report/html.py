"""Static HTML for the report: plain markup and one inline style sheet, no scripts, no server.

Section ids are stable (``device-profiles``, ``cost-models``, ``searches``, ``device-comparisons``), so
links and the browser test can find them.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

SECTION_TITLES = {
    "device-profiles": "Device profiles",
    "cost-models": "Cost models",
    "searches": "Searches",
    "device-comparisons": "Comparisons across devices",
}

CSS = """
body { font-family: -apple-system, 'Segoe UI', Roboto, 'DejaVu Sans', sans-serif; margin: 0; color: #1d2125;
       background: #f6f7f9; line-height: 1.45; }
header { background: #1f3a5f; color: #fff; padding: 18px 32px 12px; }
header h1 { margin: 0 0 4px; font-size: 24px; }
header p { margin: 2px 0; font-size: 13px; color: #d6e2f0; }
header code { background: #2c4d78; color: #fff; }
nav { margin-top: 10px; }
nav a { color: #fff; margin-right: 18px; font-size: 14px; text-decoration: none;
        border-bottom: 1px solid #8fb0d6; }
main { padding: 8px 32px 40px; max-width: 1280px; }
section.report-section { background: #fff; border: 1px solid #dde1e6; border-radius: 6px; margin: 18px 0;
       padding: 6px 22px 18px; }
h2 { font-size: 21px; border-bottom: 2px solid #1f3a5f; padding-bottom: 4px; }
h3 { font-size: 17px; margin-top: 26px; color: #1f3a5f; }
h4 { font-size: 14px; margin: 16px 0 6px; }
table { border-collapse: collapse; font-size: 12.5px; margin: 6px 0 12px; }
th, td { border: 1px solid #d5dae0; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #eef1f5; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 8px 0 14px; display: inline-block; vertical-align: top; }
figure img { max-width: 100%; border: 1px solid #e4e7eb; }
figcaption { font-size: 12px; color: #4a5560; max-width: 580px; }
figure + figure { margin-left: 10px; }
.note { background: #fff8e1; border-left: 4px solid #f2b01e; padding: 6px 10px; font-size: 13px;
        margin: 8px 0; }
.flag { background: #fdecea; border-left: 4px solid #d93025; padding: 6px 10px; font-size: 13px;
        margin: 8px 0; }
.ok { color: #1e7b34; }
.kv td:first-child { font-weight: 600; background: #f8f9fb; }
details { margin: 6px 0 12px; }
summary { cursor: pointer; font-size: 13px; color: #1f3a5f; }
code { font-size: 12px; background: #f0f2f5; padding: 0 3px; word-break: break-all; }
"""


@dataclass
class Page:
    """Sections in order; each is a list of HTML fragments."""

    title: str
    subtitle: list[str]
    sections: dict[str, list[str]] = field(default_factory=dict)

    def add(self, section: str, fragment: str) -> None:
        self.sections.setdefault(section, []).append(fragment)

    def render(self) -> str:
        nav = "".join(f'<a href="#{sid}">{esc(SECTION_TITLES.get(sid, sid))}</a>' for sid in self.sections)
        body = "".join(
            f'<section class="report-section" id="{sid}" data-section="{sid}">'
            f"<h2>{esc(SECTION_TITLES.get(sid, sid))}</h2>{''.join(frags)}</section>"
            for sid, frags in self.sections.items()
        )
        sub = "".join(f"<p>{s}</p>" for s in self.subtitle)
        return (
            '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{esc(self.title)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>{esc(self.title)}</h1>{sub}<nav>{nav}</nav></header><main>{body}</main></body></html>\n"
        )


def esc(v: Any) -> str:
    return html.escape(str(v), quote=True)


def fmt_value(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if math.isnan(v):
            return "–"
        if math.isinf(v):
            return "∞" if v > 0 else "−∞"
        if v == 0:
            return "0"
        a = abs(v)
        return f"{v:.4g}" if 1e-3 <= a < 1e5 else f"{v:.3e}"
    if isinstance(v, (int,)) or (hasattr(v, "dtype") and hasattr(v, "item")):
        return fmt_value(v.item()) if hasattr(v, "item") else str(v)
    return str(v)


def table(df: pd.DataFrame, cls: str = "", max_rows: int | None = None) -> str:
    """A DataFrame as an HTML table (numbers right-aligned, 4 significant digits)."""
    if df is None or df.empty:
        return '<p class="note">nothing to show</p>'
    rows = df if max_rows is None else df.head(max_rows)
    head = "".join(f"<th>{esc(c)}</th>" for c in df.columns)
    body = []
    for _, r in rows.iterrows():
        cells = []
        for v in r.tolist():
            num = isinstance(v, (int, float)) and not isinstance(v, bool)
            cells.append(
                f'<td class="num">{esc(fmt_value(v))}</td>' if num else f"<td>{esc(fmt_value(v))}</td>"
            )
        body.append("<tr>" + "".join(cells) + "</tr>")
    more = ""
    if max_rows is not None and len(df) > max_rows:
        more = f'<p class="note">{len(df) - max_rows} more rows in the CSV beside this page</p>'
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>{more}'


def kv_table(items: Sequence[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(fmt_value(v))}</td></tr>" for k, v in items)
    return f'<table class="kv"><tbody>{rows}</tbody></table>'


def figure(src: str | None, alt: str, caption: str, img_src: Callable[[str], str]) -> str:
    if src is None:
        return ""
    return (
        f'<figure><img src="{esc(img_src(src))}" alt="{esc(alt)}"><figcaption>{caption}</figcaption></figure>'
    )


def note(text: str, cls: str = "note") -> str:
    return f'<p class="{cls}">{text}</p>'


def flatten(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """Nested dicts (fingerprints) as dotted key/value rows."""
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        if isinstance(v, dict):
            out.extend(flatten(v, f"{prefix}{k}."))
        else:
            out.append((f"{prefix}{k}", v))
    return out
