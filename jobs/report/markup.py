"""HTML pieces of the report: the stylesheet, escaped cells, tables, embedded figures."""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
from collections.abc import Callable

import numpy as np
import pandas as pd

MAX_ROWS = 30

CSS = """
:root { --fg: #1f2328; --muted: #59636e; --line: #d1d9e0; --head: #f6f8fa; --accent: #0969da;
        --bad: #cf222e; --badbg: #ffebe9; --ok: #1a7f37; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: #fff;
       font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", Arial, sans-serif; }
header { padding: 18px 32px 10px; border-bottom: 1px solid var(--line); background: var(--head); }
header h1 { margin: 0 0 4px; font-size: 22px; }
header .sub { color: var(--muted); }
nav { margin-top: 8px; }
nav a { color: var(--accent); text-decoration: none; margin-right: 14px; }
main { padding: 0 32px 40px; max-width: 1500px; }
section { padding: 14px 0 18px; border-bottom: 1px solid var(--line); }
h2 { font-size: 19px; margin: 8px 0 10px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
p { margin: 6px 0; }
.muted, .more { color: var(--muted); }
.notrun { color: var(--muted); font-style: italic; }
code { background: var(--head); padding: 1px 5px; border-radius: 4px; font-size: 13px; }
.cards { display: flex; flex-wrap: wrap; gap: 12px; margin: 10px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; min-width: 150px; }
.card .v { font-size: 22px; font-weight: 600; }
.card .k { color: var(--muted); font-size: 12px; }
.card.bad { border-color: var(--bad); background: var(--badbg); }
.card.bad .v { color: var(--bad); }
figure { margin: 10px 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 6px; }
figcaption { color: var(--muted); font-size: 12px; }
.tables { display: flex; flex-wrap: wrap; gap: 24px; align-items: flex-start; }
table.data { border-collapse: collapse; font-size: 12.5px; margin: 4px 0; }
table.data caption { text-align: left; font-weight: 600; padding: 4px 0; }
table.data th, table.data td { border: 1px solid var(--line); padding: 3px 8px; vertical-align: top;
                               overflow-wrap: break-word; }
table.data th { background: var(--head); text-align: left; white-space: nowrap; }
table.data td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.data td.ts { white-space: nowrap; }
table.data td.long { min-width: 18em; max-width: 40em; overflow-wrap: anywhere; }
.figs { display: flex; flex-wrap: wrap; gap: 0 24px; align-items: flex-start; }
.figs > * { min-width: 0; max-width: 100%; }
table.data tbody tr:nth-child(even) { background: #fafbfc; }
table.data tr.failed, table.data tbody tr.failed:nth-child(even) {
  background: var(--badbg); color: var(--bad); font-weight: 600; }
table.kv th { width: 12em; }
.status-bad { color: var(--bad); font-weight: 600; }
.status-ok { color: var(--ok); font-weight: 600; }
"""


def esc(value) -> str:
    """A value as escaped HTML text."""
    return html.escape(str(value), quote=True)


def fmt(value) -> str:
    """A cell value as text: integers with thousands separators, floats to 4 significant places."""
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return "true" if value else "false"
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return "" if pd.isna(value) else value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return ""
        if v.is_integer() and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:,.1f}" if abs(v) >= 1e4 else f"{v:.4g}"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items()))
    try:
        if pd.isna(value):
            return ""
    except (TypeError, ValueError):
        pass
    return str(value)


def _is_num(value) -> bool:
    if isinstance(value, (bool, np.bool_)):
        return False
    return isinstance(value, (int, float, np.integer, np.floating))


def _cell_class(value, text: str) -> str | None:
    if _is_num(value):
        return "num"
    if isinstance(value, (pd.Timestamp, dt.datetime)):
        return "ts"
    return "long" if len(text) > 40 else None


def table_html(
    pdf: pd.DataFrame,
    name: str,
    caption: str | None = None,
    max_rows: int = MAX_ROWS,
    row_class: Callable[[pd.Series], str | None] | None = None,
    cell: Callable[[str, object], str] | None = None,
) -> str:
    """``pdf`` as an HTML table (``data-query=name``), at most ``max_rows`` rows and a line for the rest.

    Args:
        pdf: the rows.
        name: the query or table shown (``data-query``), for readers and tests.
        caption: shown above the table.
        max_rows: rows shown; the rest are counted in a ``… N more rows`` line.
        row_class: a row → its CSS class (or None).
        cell: formats one value (column, value) as plain text (default ``fmt``); the result is escaped.
    """
    cell = cell or (lambda _c, v: fmt(v))
    out = [f'<div class="tbl"><table class="data" data-query="{esc(name)}" data-rows="{len(pdf)}">']
    if caption:
        out.append(f"<caption>{esc(caption)}</caption>")
    out.append("<thead><tr>" + "".join(f"<th>{esc(c)}</th>" for c in pdf.columns) + "</tr></thead><tbody>")
    for _, row in pdf.head(max_rows).iterrows():
        cls = row_class(row) if row_class else None
        tds = []
        for c in pdf.columns:
            v = row[c]
            text = cell(c, v)
            kind = _cell_class(v, text)
            tds.append(f'<td class="{kind}">{esc(text)}</td>' if kind else f"<td>{esc(text)}</td>")
        out.append((f'<tr class="{esc(cls)}">' if cls else "<tr>") + "".join(tds) + "</tr>")
    out.append("</tbody></table>")
    if len(pdf) > max_rows:
        out.append(f'<p class="more">… {len(pdf) - max_rows:,} more rows</p>')
    out.append("</div>")
    return "\n".join(out)


def not_run(stage: str, what: str | None = None) -> str:
    """The one line a section shows when its tables are empty."""
    lead = f"{esc(what)}: not run yet" if what else "not run yet"
    return f'<p class="notrun">{lead}: run <code>corpuslake stage {esc(stage)}</code></p>'


def figure_html(png: bytes, alt: str, caption: str | None = None) -> str:
    """A PNG embedded as a data URI."""
    b64 = base64.b64encode(png).decode("ascii")
    cap = f"<figcaption>{esc(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{b64}">{cap}</figure>'
