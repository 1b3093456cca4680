"""The report's sections: each turns its loaded data into HTML (tables, plots, or a line naming the stage
to run when its tables are empty)."""

from __future__ import annotations

import math
from collections.abc import Callable

from jobs.report.markup import MAX_ROWS, esc, figure_html, fmt, not_run, table_html
from jobs.report.plots import (
    plot_domains,
    plot_evaluation,
    plot_funnel,
    plot_histograms,
    plot_rater_weights,
    plot_selection,
)
from jobs.report.queries import ReportContext, selection_totals

SECTIONS: tuple[tuple[str, str], ...] = (
    ("summary", "Summary"),
    ("funnel", "Filter funnel"),
    ("scores", "Score distributions"),
    ("domains", "Domain weights (perplexity correlations)"),
    ("rater-weights", "Rater weights (Meta-rater)"),
    ("selection", "Selection per strategy"),
    ("evaluation", "Does the selection help? (evaluate)"),
    ("gates", "Gates"),
    ("versions", "Table versions and runs"),
)
SECTION_IDS = tuple(s for s, _ in SECTIONS)


def section_summary(ctx: ReportContext, data: dict) -> str:
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


def section_funnel(ctx: ReportContext, data: dict) -> str:
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


def section_scores(ctx: ReportContext, data: dict) -> str:
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


def section_domains(ctx: ReportContext, data: dict) -> str:
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


def section_rater_weights(ctx: ReportContext, data: dict) -> str:
    rw = data["rater_weights"]
    if not len(rw):
        return not_run("aggregate_weights")
    out = [figure_html(plot_rater_weights(rw), "rater weights", "w*: the fitted weight of each signal in Q")]
    ctx.images["rater-weights"] = ctx.images.get("rater-weights", 0) + 1
    out.append(table_html(rw, "rater_weights", "rater_weights"))
    return "\n".join(out)


def section_selection(ctx: ReportContext, data: dict) -> str:
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


def section_evaluation(ctx: ReportContext, data: dict) -> str:
    ev = data["evaluation"]
    if not len(ev):
        return not_run("evaluate")
    rand = ev[ev["strategy"] == "random"].set_index(["benchmark", "metric"])["mean"]
    ev = ev.assign(mean_random=[rand.get((b, m)) for b, m in zip(ev["benchmark"], ev["metric"], strict=True)])
    tokens = int(ev["train_tokens"].iloc[0])
    out = [
        figure_html(
            plot_evaluation(ev),
            "evaluation",
            f"{int(ev['n_seeds'].iloc[0])} seeds per strategy, {tokens:,} training tokens per model; random "
            "is re-drawn per seed; bits per byte of the gold answers on the evaluation split, and of "
            "held-out web text (web_heldout)",
        )
    ]
    ctx.images["evaluation"] = ctx.images.get("evaluation", 0) + 1
    out.append(table_html(ev.drop(columns="mean_random"), "evaluation", "evaluation (gold.evaluation)"))
    return "\n".join(out)


def section_gates(ctx: ReportContext, data: dict) -> str:
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


def section_versions(ctx: ReportContext, data: dict) -> str:
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


RENDERERS: dict[str, Callable[[ReportContext, dict], str]] = {
    "summary": section_summary,
    "funnel": section_funnel,
    "scores": section_scores,
    "domains": section_domains,
    "rater-weights": section_rater_weights,
    "selection": section_selection,
    "evaluation": section_evaluation,
    "gates": section_gates,
    "versions": section_versions,
}
