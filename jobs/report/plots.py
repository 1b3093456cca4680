"""The report's plots: matplotlib PNGs drawn on ``Figure`` objects with their own Agg canvas, so pyplot's
global state (a notebook's backend and figure list) is never touched."""

from __future__ import annotations

import io
import math

import pandas as pd

from jobs.report.queries import HIST_BINS

DPI = 100
TOP_DOMAINS = 15
STACK_DOMAINS = 10


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


def plot_evaluation(ev: pd.DataFrame) -> bytes:
    """Per benchmark (gold-answer bpb; web_heldout: bpb of held-out web text), each strategy's mean paired
    difference to random as a % of random's mean, with its t interval; below 0 = better than random."""
    rows = ev[ev["metric"].isin(["answer_bpb", "bpb"]) & (ev["strategy"] != "random")]
    benches = sorted(rows["benchmark"].unique())
    strategies = sorted(rows["strategy"].unique())
    fig = _new_figure(10, 0.5 * max(len(benches) * len(strategies), 1) + 1.6)
    ax = fig.add_subplot()
    colors = ["#0969da", "#8250df", "#1a7f37", "#bf3989", "#9a6700", "#cf222e"]
    height = 0.8 / max(len(strategies), 1)
    for j, s in enumerate(strategies):
        r = rows[rows["strategy"] == s].set_index("benchmark").reindex(benches)
        pct = 100 * r["diff_to_random"] / r["mean_random"]
        low = 100 * (r["diff_to_random"] - r["ci_low"]) / r["mean_random"]
        high = 100 * (r["ci_high"] - r["diff_to_random"]) / r["mean_random"]
        y = [i + j * height for i in range(len(benches))]
        ax.barh(y, pct, height=height, color=colors[j % len(colors)], label=s, xerr=[low, high], capsize=3)
    ax.axvline(0, color="#57606a", linewidth=1)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(benches))], benches)
    ax.invert_yaxis()
    ax.set_xlabel("bits per byte vs random, % (mean paired difference over seeds, t interval)")
    ax.set_title("small LMs trained on each selection at equal tokens: lower is better", fontsize=11)
    ax.legend(fontsize=9, loc="best")
    _style(ax)
    return _png(fig)
