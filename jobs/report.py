"""The HTML report of a lakehouse: one self-contained file a person can open, mail or attach to a ticket.

Sections (each ``<section id=…>``): summary, funnel, scores, domains, rater-weights, selection, gates,
versions. The tables come from the saved queries of ``jobs/sql/`` (the same ones ``corpuslake sql`` runs);
plots are matplotlib PNGs embedded as base64, drawn on ``Figure`` objects with the Agg canvas so pyplot's
global state (a notebook's backend) is never touched. Nothing is loaded from outside the file.

A lakehouse where some stages never ran still renders: a section whose tables are empty says which stage
to run instead.

Run it:  corpuslake report --out reports/report.html
         python -m jobs.report --conf conf/local.yaml --out reports/report.html \\
             --screenshot reports/report.png
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import html
import io
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from pyspark.sql import SparkSession

from jobs.config import Conf
from jobs.queries import sql_text

SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Summary"),
    ("funnel", "Filter funnel"),
    ("scores", "Score distributions"),
    ("domains", "Domain weights (perplexity correlations)"),
    ("rater-weights", "Rater weights (Meta-rater)"),
    ("selection", "Selection per strategy"),
    ("gates", "Gates"),
    ("versions", "Table versions and runs"),
)
SECTION_IDS = tuple(s for s, _ in SECTIONS)

MAX_ROWS = 30
DPI = 100
HIST_BINS = 30
TOP_DOMAINS = 15
STACK_DOMAINS = 10
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

# The report binds the table names of its queries to the lakehouse's snapshots (``Lakehouse.read``, Spark's
# Parquet or Delta reader) through temporary views: the same rows as the catalog names that ``connect``
# registers, read faster on the embedded engine (its SQL names go through a Python data source), and
# always the tables of the lakehouse passed in, whatever the session's names point at. String literals
# and comments of the SQL are left as they are.
_SQL_SKIP = re.compile(r"('(?:[^'\\]|\\.)*'|--[^\n]*)")
_TABLE_NAME = re.compile(r"(?<![\w.`])([a-z_]+)\.([a-z_]+)(?![\w`])")
VIEW_PREFIX = "corpuslake_report__"

# Histograms of the per-document scores, binned in Spark so only HIST_BINS rows per series reach the driver.
# One panel per PRRC dimension, bpb with one series per model, max cosine per method with one series per
# benchmark; bins are shared by the series of a panel.
HISTOGRAM_SQL = f"""
with long as (
  select 'prrc' as figure, stack(4, 'professionalism', professionalism, 'readability', readability,
         'reasoning', reasoning, 'cleanliness', cleanliness) as (panel, value), 'rating' as series
  from scores.prrc
  union all
  select 'bpb', 'bits per byte', bpb, model_id from scores.perplexity
  union all
  select 'cosine', method, max_cosine, benchmark from scores.similarity
),
bounds as (
  select figure, panel, min(value) as lo, max(value) as hi from long where not isnan(value) group by 1, 2
)
select l.figure, l.panel, l.series, b.lo, b.hi,
       case when b.hi > b.lo then least(cast(floor((l.value - b.lo) / (b.hi - b.lo) * {HIST_BINS}) as int),
                                        {HIST_BINS - 1})
            else 0 end as bin,
       count(*) as n
from long l join bounds b on l.figure = b.figure and l.panel = b.panel
where not isnan(l.value)
group by 1, 2, 3, 4, 5, 6
order by 1, 2, 3, 6
"""

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


# ------------------------------------------------------------------------------------------ HTML pieces


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


# ------------------------------------------------------------------------------------------ plots


def _new_figure(width: float, height: float):
    """A Figure with its own Agg canvas (no pyplot: a notebook's backend and figure list stay as they are)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    return buf.getvalue()


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    ax.grid(axis="x", color="#e5e7eb", linewidth=0.8)
    ax.set_axisbelow(True)


def plot_funnel(funnel: pd.DataFrame) -> bytes:
    """Documents left after each step (bars), with what the step removed."""
    fig = _new_figure(10, 0.42 * len(funnel) + 1.2)
    ax = fig.add_subplot()
    labels = [f"{r.stage}: {r.step}" for r in funnel.itertuples()]
    colors = ["#8c959f" if s == "ingest" else "#0969da" for s in funnel["stage"]]
    y = range(len(funnel))
    ax.barh(y, funnel["remaining"], color=colors)
    ax.set_yticks(list(y), labels)
    ax.invert_yaxis()
    top = max(int(funnel["remaining"].max()), 1)
    for i, r in enumerate(funnel.itertuples()):
        note = f"{int(r.remaining):,}" + (f"   (−{int(r.removed):,})" if r.removed else "")
        ax.text(r.remaining + top * 0.01, i, note, va="center", fontsize=9)
    ax.set_xlim(0, top * 1.18)
    ax.set_xlabel("documents left")
    ax.set_title("records read → bronze → each clean step → silver.documents", fontsize=11)
    _style(ax)
    return _png(fig)


def plot_histograms(hist: pd.DataFrame, title: str, xlabel: str, legend: bool) -> bytes:
    """One panel per ``panel`` value; each ``series`` drawn as a step histogram over the panel's bins."""
    panels = sorted(hist["panel"].unique())
    ncols = min(len(panels), 4)
    nrows = math.ceil(len(panels) / ncols)
    fig = _new_figure(3.6 * ncols + 0.6, 2.8 * nrows + 0.5)
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax, panel in zip(axes, panels, strict=False):
        rows = hist[hist["panel"] == panel]
        lo, hi = float(rows["lo"].iloc[0]), float(rows["hi"].iloc[0])
        width = (hi - lo) / HIST_BINS if hi > lo else max(abs(lo) * 0.02, 0.01)
        edges = (
            [lo + i * width for i in range(HIST_BINS + 1)] if hi > lo else [lo - width / 2, lo + width / 2]
        )
        for series, part in rows.groupby("series", sort=True):
            counts = [0] * (len(edges) - 1)
            for b, n in zip(part["bin"], part["n"], strict=True):
                counts[int(b)] += int(n)
            ax.stairs(
                counts,
                edges,
                label=str(series),
                linewidth=1.4,
                fill=len(rows["series"].unique()) == 1,
                alpha=0.85,
            )
        ax.set_title(panel if hi > lo else f"{panel} (constant {lo:.4g})", fontsize=10)
        ax.set_xlabel(xlabel, fontsize=9)
        ax.set_ylabel("documents", fontsize=9)
        ax.tick_params(labelsize=8)
        _style(ax)
        if legend and rows["series"].nunique() > 1:
            ax.legend(fontsize=8, frameon=False)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=11)
    return _png(fig)


def plot_domains(weights: pd.DataFrame, estimator: str, projection: str) -> bytes:
    """Left: each domain's estimate against its weight. Right: the top domains' weights and bounds tau."""
    fig = _new_figure(12, 4.8)
    left, right = fig.subplots(1, 2, width_ratios=[1, 1.25])
    sizes = 20 + 600 * weights["token_share"].fillna(0) / max(float(weights["token_share"].max() or 1), 1e-9)
    picked = weights["weight"] > 0
    left.scatter(
        weights.loc[~picked, "estimate"],
        weights.loc[~picked, "weight"],
        s=sizes[~picked],
        color="#8c959f",
        alpha=0.6,
        label="weight 0",
    )
    left.scatter(
        weights.loc[picked, "estimate"],
        weights.loc[picked, "weight"],
        s=sizes[picked],
        color="#0969da",
        alpha=0.75,
        label="weighted",
    )
    left.set_xlabel(f"estimate ({estimator})")
    left.set_ylabel("weight")
    left.set_title(f"estimate vs weight ({projection} projection; size = token share)", fontsize=10)
    left.legend(fontsize=8, frameon=False)
    _style(left)
    top = weights.sort_values(["weight", "rank", "domain"], ascending=[False, True, True]).head(TOP_DOMAINS)
    y = range(len(top))
    right.barh(y, top["tau"], color="#d0d7de", label="bound tau")
    right.barh(y, top["weight"], height=0.55, color="#0969da", label="weight")
    right.set_yticks(list(y), [str(d) for d in top["domain"]], fontsize=8)
    right.invert_yaxis()
    right.set_xlabel("sampling weight")
    right.set_title(f"top {len(top)} domains by weight", fontsize=10)
    right.legend(fontsize=8, frameon=False, loc="lower right")
    _style(right)
    return _png(fig)


def plot_rater_weights(rw: pd.DataFrame) -> bytes:
    """w* per signal."""
    fig = _new_figure(8, 0.45 * len(rw) + 1.3)
    ax = fig.add_subplot()
    y = range(len(rw))
    ax.barh(y, rw["weight"], color="#8250df")
    ax.set_yticks(list(y), [str(s) for s in rw["signal"]])
    ax.invert_yaxis()
    for i, w in enumerate(rw["weight"]):
        ax.text(float(w) + 0.005, i, f"{float(w):.3f}", va="center", fontsize=9)
    ax.set_xlim(0, max(float(rw["weight"].max()) * 1.15, 0.05))
    ax.set_xlabel("weight w* (Σ = 1)")
    ax.set_title("Meta-rater signal weights", fontsize=11)
    _style(ax)
    return _png(fig)


def plot_selection(comp: pd.DataFrame, budget: int | None) -> bytes:
    """Per strategy: tokens stacked by domain (the most selected domains, the rest as 'other')."""
    from matplotlib import colormaps

    by_domain = comp.groupby("domain")["tokens"].sum().sort_values(ascending=False)
    keep = [d for d in by_domain.index if d != "(none)"][:STACK_DOMAINS]
    strategies = sorted(comp["strategy"].unique())
    fig = _new_figure(12, 0.55 * len(strategies) + 2.2)
    ax = fig.add_subplot()
    cmap = colormaps["tab20"]
    left = [0.0] * len(strategies)
    for k, d in enumerate([*keep, "other"]):
        vals = []
        for s in strategies:
            rows = comp[comp["strategy"] == s]
            mask = ~rows["domain"].isin(keep) if d == "other" else rows["domain"] == d
            vals.append(float(rows.loc[mask, "tokens"].sum()))
        color = "#d0d7de" if d == "other" else cmap(k % 20)
        ax.barh(strategies, vals, left=left, color=color, label=d, edgecolor="white", linewidth=0.5)
        left = [a + b for a, b in zip(left, vals, strict=True)]
    if budget:
        ax.axvline(budget, color="#cf222e", linestyle="--", linewidth=1.2, label=f"budget {budget:,}")
    ax.invert_yaxis()
    ax.set_xlabel("tokens selected")
    ax.set_title(
        f"selection composition: the {len(keep)} most selected domains, the rest as other", fontsize=11
    )
    ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    _style(ax)
    return _png(fig)


# ------------------------------------------------------------------------------------------ the report


def bind_tables(sql: str, views: dict[str, str]) -> str:
    """``sql`` with each table name of ``views`` (``gold.selection``) replaced by its view's name.

    Quoted strings and ``--`` comments are not touched (``'scores.prrc' as table_name`` stays a label).
    """
    parts = _SQL_SKIP.split(sql)
    for i in range(0, len(parts), 2):  # split keeps the skipped pieces at the odd indices
        parts[i] = _TABLE_NAME.sub(lambda m: views.get(m.group(0), m.group(0)), parts[i])
    return "".join(parts)


@dataclass
class _Ctx:
    spark: SparkSession
    lakehouse: object
    conf: Conf
    images: dict[str, int] = field(default_factory=dict)
    views: dict[str, str] = field(default_factory=dict)

    def sql(self, text: str) -> pd.DataFrame:
        """Rows of a query, its table names read from the lakehouse's latest snapshots."""
        from jobs.catalog import all_specs

        for spec in all_specs():
            if spec.name not in self.views and re.search(
                rf"(?<![\w.`]){re.escape(spec.name)}(?![\w`])", text
            ):
                view = VIEW_PREFIX + spec.name.replace(".", "__")
                self.lakehouse.read(spec).createOrReplaceTempView(view)
                self.views[spec.name] = view
        return self.spark.sql(bind_tables(text, self.views)).toPandas()

    def query(self, name: str) -> pd.DataFrame:
        """A saved query's rows (``jobs/sql/<name>.sql``)."""
        return self.sql(sql_text(name))

    def drop_views(self) -> None:
        for view in self.views.values():
            self.spark.catalog.dropTempView(view)
        self.views.clear()


def _funnel_final(funnel: pd.DataFrame) -> int | None:
    rows = funnel[funnel["stage"] == "clean"]
    return int(rows["remaining"].iloc[-1]) if len(rows) else None


def section_summary(ctx: _Ctx, data: dict) -> str:
    conf, lh = ctx.conf, ctx.lakehouse
    funnel = data["funnel"]
    read = int(funnel.loc[funnel["ord"] == 0, "remaining"].iloc[0]) if len(funnel) else 0
    accepted = int(funnel.loc[funnel["ord"] == 1, "remaining"].iloc[0]) if len(funnel) else 0
    kept = data["kept"]
    comp = data["selection_composition"]
    gates = data["gate_results"]
    failed = int((~gates["success"].astype(bool)).sum()) if len(gates) else 0
    kv = [
        ("profile", conf.profile),
        ("conf file", conf.source_file or "-"),
        ("warehouse", getattr(lh, "warehouse", conf.storage.warehouse)),
        ("engine", getattr(lh, "engine", conf.storage.engine)),
        ("generated at", data["generated_at"]),
        (
            "estimator / projection",
            f"{conf.aggregate.domains.estimator} / {conf.aggregate.domains.projection}",
        ),
        ("token budget per strategy", f"{conf.select.token_budget:,}"),
    ]
    cards = [
        ("records read", f"{read:,}", ""),
        ("accepted into bronze", f"{accepted:,}", ""),
        ("kept in silver", f"{kept:,}" if kept is not None else "—", ""),
        ("selected (distinct docs)", f"{data['selected']:,}", ""),
        ("strategies", f"{comp['strategy'].nunique():,}", ""),
        ("gate failures", f"{failed:,}", " bad" if failed else ""),
    ]
    out = ['<div class="cards">']
    for k, v, cls in cards:
        out.append(
            f'<div class="card{cls}" data-key="{esc(k)}"><div class="v">{esc(v)}</div>'
            f'<div class="k">{esc(k)}</div></div>'
        )
    out.append("</div>")
    out.append('<table class="data kv" data-query="summary"><tbody>')
    out += [f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in kv]
    out.append("</tbody></table>")
    return "\n".join(out)


def section_funnel(ctx: _Ctx, data: dict) -> str:
    funnel, reasons = data["funnel"], data["filter_reasons"]
    if not len(funnel) or int(funnel["remaining"].iloc[0]) == 0:
        return not_run("ingest")
    out = []
    if data["kept"] is None:
        funnel = funnel[funnel["stage"] == "ingest"]
        note = not_run("clean", "clean")
    else:
        note = ""
    out.append(figure_html(plot_funnel(funnel), "filter funnel", "documents left after each step"))
    ctx.images["funnel"] = ctx.images.get("funnel", 0) + 1
    out.append(note)
    out.append('<div class="tables">')
    out.append(table_html(funnel, "funnel", "funnel"))
    if len(reasons):
        out.append(table_html(reasons, "filter_reasons", "top filter reasons", max_rows=15))
    out.append("</div>")
    return "\n".join(out)


def section_scores(ctx: _Ctx, data: dict) -> str:
    hist, summary = data["histograms"], data["score_summary"]
    figs, notes = [], []
    specs = (
        ("prrc", "score_prrc", "PRRC ratings (scores.prrc), one panel per dimension", "rating 0–5", False),
        ("bpb", "score_perplexity", "bits per byte per model (scores.perplexity)", "bits per byte", True),
        (
            "cosine",
            "score_similarity",
            "max cosine to a benchmark per method (scores.similarity)",
            "max cosine",
            True,
        ),
    )
    for key, stage, title, xlabel, legend in specs:
        rows = hist[hist["figure"] == key]
        if len(rows):
            png = plot_histograms(rows, title, xlabel, legend)
            figs.append(figure_html(png, f"histogram {key}", title))
            ctx.images["scores"] = ctx.images.get("scores", 0) + 1
        else:
            notes.append(not_run(stage, title.split(" (")[0]))
    out = [*notes, '<div class="figs">', *figs, "</div>"] if figs else notes
    if len(summary):
        out.append(table_html(summary, "score_summary", "score_summary", max_rows=40))
    return "\n".join(out)


def section_domains(ctx: _Ctx, data: dict) -> str:
    weights, agree = data["domain_weights"], data["estimator_agreement"]
    if not len(weights):
        return not_run("aggregate_domains")
    est, proj = str(weights["estimator"].iloc[0]), str(weights["projection"].iloc[0])
    out = [
        figure_html(
            plot_domains(weights, est, proj),
            "domain weights",
            f"{len(weights)} domains, estimator {est}, {proj} projection",
        )
    ]
    ctx.images["domains"] = ctx.images.get("domains", 0) + 1
    out.append('<div class="tables">')
    out.append(
        table_html(weights, "domain_weights", "domain_weights (chosen estimator and projection)", max_rows=20)
    )
    if len(agree):
        out.append(table_html(agree, "estimator_agreement", "estimator_agreement (linear projection)"))
    out.append("</div>")
    return "\n".join(out)


def section_rater_weights(ctx: _Ctx, data: dict) -> str:
    rw = data["rater_weights"]
    if not len(rw):
        return not_run("aggregate_weights")
    out = [figure_html(plot_rater_weights(rw), "rater weights", "w*: the fitted weight of each signal in Q")]
    ctx.images["rater-weights"] = ctx.images.get("rater-weights", 0) + 1
    out.append(table_html(rw, "rater_weights", "rater_weights"))
    return "\n".join(out)


def selection_totals(comp: pd.DataFrame, budget: int | None) -> pd.DataFrame:
    """Per strategy: documents, tokens, domains and the share of the token budget used."""
    tot = comp.groupby("strategy", sort=True).agg(
        docs=("docs", "sum"), tokens=("tokens", "sum"), domains=("domain", "nunique")
    )
    tot = tot.reset_index()
    tot["budget"] = budget
    tot["pct_of_budget"] = (100 * tot["tokens"] / budget).round(2) if budget else None
    return tot


def section_selection(ctx: _Ctx, data: dict) -> str:
    comp, overlap = data["selection_composition"], data["selection_overlap"]
    if not len(comp):
        return not_run("select")
    budget = ctx.conf.select.token_budget
    out = [
        figure_html(
            plot_selection(comp, budget),
            "selection composition",
            "tokens per strategy, stacked by domain; the dashed line is the token budget",
        )
    ]
    ctx.images["selection"] = ctx.images.get("selection", 0) + 1
    out.append('<div class="tables">')
    out.append(
        table_html(selection_totals(comp, budget), "selection_totals", "totals per strategy vs budget")
    )
    if len(overlap):
        out.append(table_html(overlap, "selection_overlap", "selection_overlap"))
    out.append(table_html(comp, "selection_composition", "selection_composition", max_rows=20))
    out.append("</div>")
    return "\n".join(out)


def section_gates(ctx: _Ctx, data: dict) -> str:
    gates = data["gate_results"]
    if not len(gates):
        return '<p class="notrun">no gate has run yet: run <code>corpuslake run</code></p>'
    failed = int((~gates["success"].astype(bool)).sum())
    cls = "status-bad" if failed else "status-ok"
    out = [
        f'<p class="gate-count {cls}" data-failed="{failed}" data-total="{len(gates)}">'
        f"{failed:,} failed of {len(gates):,} gate runs</p>"
    ]
    out.append(
        table_html(
            gates,
            "gate_results",
            "gate_results (failures first, then newest)",
            max_rows=40,
            row_class=lambda r: None if bool(r["success"]) else "failed",
        )
    )
    return "\n".join(out)


def _first_line(text, limit: int = 160) -> str:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return ""
    line = str(text).strip().split("\n", 1)[0]
    return line if len(line) <= limit else line[: limit - 1] + "…"


def section_versions(ctx: _Ctx, data: dict) -> str:
    versions, runs = data["table_versions"], data["runs"]
    if not len(versions) and not len(runs):
        return '<p class="notrun">no stage has run yet: run <code>corpuslake run</code></p>'
    out = ['<div class="tables">']
    out.append(table_html(versions, "table_versions", "table_versions (latest version written)"))
    out.append("</div>")
    out.append(
        table_html(
            runs,
            "runs",
            "runs (newest first)",
            max_rows=MAX_ROWS,
            cell=lambda c, v: _first_line(v) if c == "message" else fmt(v),
        )
    )
    return "\n".join(out)


RENDERERS: dict[str, Callable[[_Ctx, dict], str]] = {
    "summary": section_summary,
    "funnel": section_funnel,
    "scores": section_scores,
    "domains": section_domains,
    "rater-weights": section_rater_weights,
    "selection": section_selection,
    "gates": section_gates,
    "versions": section_versions,
}

# What each section reads: saved queries (by name) and the extra data below.
NEEDS: dict[str, tuple[str, ...]] = {
    "summary": ("funnel", "kept", "selected", "selection_composition", "gate_results"),
    "funnel": ("funnel", "kept", "filter_reasons"),
    "scores": ("histograms", "score_summary"),
    "domains": ("domain_weights", "estimator_agreement"),
    "rater-weights": ("rater_weights",),
    "selection": ("selection_composition", "selection_overlap"),
    "gates": ("gate_results",),
    "versions": ("table_versions", "runs"),
}


def _load(ctx: _Ctx, names: Iterable[str]) -> dict:
    from schemas import gold, silver

    data: dict = {"generated_at": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")}
    for name in dict.fromkeys(names):
        if name == "kept":
            # Counted by the lakehouse reader (Parquet statistics, no text read); None: clean never ran.
            n = ctx.lakehouse.read(silver.DOCUMENTS).count()
            filtered = ctx.lakehouse.read(silver.FILTERED).count()
            data[name] = n if n or filtered else None
        elif name == "selected":
            data[name] = ctx.lakehouse.read(gold.SELECTION).select("doc_id").distinct().count()
        elif name == "histograms":
            data[name] = ctx.sql(HISTOGRAM_SQL)
        else:
            data[name] = ctx.query(name)
    return data


def render(spark: SparkSession, lakehouse, conf: Conf, sections: Iterable[str] | None = None) -> str:
    """The report as one HTML string (see ``write_report``)."""
    wanted = list(SECTION_IDS) if sections is None else [s for s in SECTION_IDS if s in set(sections)]
    unknown = sorted(set(sections or ()) - set(SECTION_IDS))
    if unknown:
        from jobs.runtime import UsageError

        raise UsageError(f"unknown report sections {unknown}; sections: {', '.join(SECTION_IDS)}")
    ctx = _Ctx(spark, lakehouse, conf)
    try:
        data = _load(ctx, [n for s in wanted for n in NEEDS[s]])
    finally:
        ctx.drop_views()
    bodies = {s: RENDERERS[s](ctx, data) for s in wanted}
    titles = dict(SECTIONS)
    nav = " ".join(f'<a href="#{s}">{esc(titles[s])}</a>' for s in wanted)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>corpuslake report: {esc(conf.profile)}</title>",
        f"<style>{CSS}</style></head><body>",
        f'<header><h1>corpuslake report</h1><div class="sub">profile <b>{esc(conf.profile)}</b> · '
        f"{esc(getattr(lakehouse, 'warehouse', conf.storage.warehouse))} · {esc(data['generated_at'])}</div>"
        f"<nav>{nav}</nav></header><main>",
    ]
    for s in wanted:
        n_img = ctx.images.get(s, 0)
        parts.append(
            f'<section id="{s}" data-images="{n_img}"><h2>{esc(titles[s])}</h2>\n{bodies[s]}\n</section>'
        )
    parts.append("</main></body></html>\n")
    return "\n".join(parts)


def write_report(
    spark: SparkSession, lakehouse, conf: Conf, out: str | Path, sections: Iterable[str] | None = None
) -> Path:
    """Write the self-contained HTML report of the lakehouse.

    Args:
        spark: a session in which every table is registered (``jobs.catalog.connect``).
        lakehouse: the lakehouse of ``conf``.
        conf: the profile (names, budget, estimator).
        out: the HTML file; parent folders are created, the file is replaced atomically.
        sections: only these section ids (default: all, in report order).

    Returns:
        The absolute path written.
    """
    page = render(spark, lakehouse, conf, sections)
    path = Path(out).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


# ------------------------------------------------------------------------------------------ screenshot


def find_chromium() -> str | None:
    """The first Chromium or Chrome binary on the PATH (``CORPUSLAKE_CHROMIUM`` names one explicitly)."""
    explicit = os.environ.get("CORPUSLAKE_CHROMIUM")
    if explicit:
        return shutil.which(explicit) or (explicit if os.access(explicit, os.X_OK) else None)
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(
    html_path: str | Path, png_path: str | Path, width: int = 1400, height: int = 2000, timeout_s: float = 120
) -> Path:
    """Render ``html_path`` with headless Chromium and save the top ``width`` × ``height`` pixels as PNG.

    Raises:
        RuntimeError: no Chromium binary is found (install the Debian package ``chromium``), it failed or
            timed out, or it wrote no image.
    """
    binary = find_chromium()
    if binary is None:
        raise RuntimeError(
            "no Chromium found (looked for " + ", ".join(CHROMIUM_NAMES) + "): install the Debian package "
            "`chromium` (apt-get install chromium) or set CORPUSLAKE_CHROMIUM"
        )
    src = Path(html_path).resolve()
    if not src.is_file():
        raise RuntimeError(f"no such report: {src}")
    png = Path(png_path).expanduser().resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    tmp = png.with_name(f".{png.name}.tmp.png")
    with tempfile.TemporaryDirectory(prefix="corpuslake-chromium-") as profile:
        cmd = [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--mute-audio",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={tmp}",
            src.as_uri(),
        ]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"{binary} did not finish the screenshot within {timeout_s:g} s") from exc
    if proc.returncode != 0 or not tmp.is_file() or tmp.stat().st_size == 0:
        tmp.unlink(missing_ok=True)
        tail = (proc.stderr or proc.stdout or "").strip().splitlines()[-3:]
        raise RuntimeError(f"{binary} exited {proc.returncode} without a screenshot: {' | '.join(tail)}")
    os.replace(tmp, png)
    return png


# ------------------------------------------------------------------------------------------ entry point


def main(argv: list[str] | None = None) -> int:
    """``python -m jobs.report --conf … --out … [--screenshot PNG] [--sections a,b]``."""
    from jobs.catalog import connect
    from jobs.config import ConfError, load_conf
    from jobs.runtime import EXIT_ERROR, EXIT_OK, EXIT_USAGE, UsageError, _error_log, add_conf_args

    p = add_conf_args(argparse.ArgumentParser(prog="corpuslake-report", description=__doc__.split("\n")[0]))
    p.add_argument("--out", default="reports/report.html", help="the HTML file to write")
    p.add_argument("--screenshot", default=None, metavar="PNG", help="also render it with headless Chromium")
    p.add_argument(
        "--sections",
        default=None,
        help="comma-separated section ids (default: all): " + ", ".join(SECTION_IDS),
    )
    args = p.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()] if args.sections else None
    try:
        conf = load_conf(args.conf, args.overrides)
        if sections:
            unknown = sorted(set(sections) - set(SECTION_IDS))
            if unknown:
                raise UsageError(f"unknown report sections {unknown}; sections: {', '.join(SECTION_IDS)}")
    except (ConfError, UsageError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        spark, lh = connect(conf)
        path = write_report(spark, lh, conf, args.out, sections)
        print(f"report: {path}")
        if args.screenshot:
            print(f"screenshot: {screenshot(path, args.screenshot)}")
    except RuntimeError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # one line for the user, the traceback in a file
        first = str(exc).splitlines()[0] if str(exc) else ""
        print(f"report: failed: {type(exc).__name__}: {first} (details: {_error_log(exc)})", file=sys.stderr)
        return EXIT_ERROR
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
