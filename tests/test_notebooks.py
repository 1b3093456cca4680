"""Every notebook in notebooks/ runs top to bottom on the pipeline lakehouse and shows the right numbers.

Each notebook is executed as a script (``runpy``, the way ``python notebooks/NN_x.py`` runs it), with its
parameters from environment variables; the values it computed are then checked against the tables read
independently (the native Parquet reader, pandas), not against the notebook's own queries.
"""

from __future__ import annotations

import math
import re
import runpy
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
SEPARATOR = "\n\n# COMMAND ----------\n\n"
TOP_N, EXAMPLES = 5, 2
WS = re.compile(r"[ \t\n\x0b\f\r]+")  # Java's \s, what Spark's regexp_replace matches


def _cells(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split(SEPARATOR)


# -------------------------------------------------------------------------------------------- format


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_format(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Databricks notebook source\n")
    cells = _cells(path)
    assert len(cells) >= 4, "header, parameters, connect, and at least one section"
    assert text.count("# COMMAND ----------") == len(cells) - 1, "separators are blank-line delimited"
    # 1. a markdown cell listing the parameters
    header = cells[0].split("\n")[1:]
    assert header[0] == "# MAGIC %md"
    assert all(line.startswith("# MAGIC") for line in header if line)
    assert "Parameters" in cells[0] and "`conf`" in cells[0] and "`CORPUSLAKE_CONF`" in cells[0]
    # 2. the parameters: jobs.notebook.params (Databricks widgets, else CORPUSLAKE_* variables), each
    # documented in the markdown cell with its environment variable
    params = cells[1]
    call = re.search(r"\bparams\(globals\(\), (.*)\)", params)
    assert call, "P = params(globals(), name=default, ...)"
    names = re.findall(r'(\w+)="[^"]*"', call.group(1))
    assert names and names[0] == "conf" and 'conf="conf/local.yaml"' in call.group(1)
    for name in names:
        assert f"`{name}`" in cells[0] and f"`CORPUSLAKE_{name.upper()}`" in cells[0], name
    assert "show = shower(globals())" in params and "dbutils" not in params and "os.environ" not in text
    # 3. the installed package, one connect for every table
    assert "conf, spark, lakehouse = open_profile(CONF)" in cells[2]
    assert "sys.path" not in text
    # every other markdown cell is a whole %md cell
    for cell in cells[1:]:
        if cell.startswith("# MAGIC"):
            assert cell.startswith("# MAGIC %md") and all(
                line.startswith("# MAGIC") for line in cell.split("\n") if line
            )


class _Widgets:
    def __init__(self, values):
        self.values, self.created = values, {}

    def text(self, name, default):
        self.created[name] = default
        self.values.setdefault(name, default)

    def get(self, name):
        return self.values[name]


def test_params_widgets_else_environment(monkeypatch):
    from types import SimpleNamespace

    from jobs.notebook import params

    monkeypatch.setenv("CORPUSLAKE_TOP_N", "7")
    monkeypatch.delenv("CORPUSLAKE_CONF", raising=False)
    assert params({}, conf="conf/local.yaml", top_n="20") == {"conf": "conf/local.yaml", "top_n": "7"}
    widgets = _Widgets({"top_n": "3"})
    got = params({"dbutils": SimpleNamespace(widgets=widgets)}, conf="c.yaml", top_n="20")
    assert got == {"conf": "c.yaml", "top_n": "3"}  # the widget's value, not the environment's
    assert widgets.created == {"conf": "c.yaml", "top_n": "20"}


def test_shower_display_else_text(capsys):
    from jobs.notebook import shower

    shown = []
    frame = pd.DataFrame({"a": range(5), "b": ["x" * 100] * 5})
    shower({"display": shown.append})(frame)
    assert shown == [frame] and capsys.readouterr().out == ""
    shower({}, n=2)(frame)
    out = capsys.readouterr().out
    assert len(out.strip().split("\n")) == 3 and "x" * 61 not in out  # header + 2 rows, cut at 60

    class Spark:
        def show(self, n, truncate):
            shown.append((n, truncate))

    shower({}, n=9)(Spark())
    assert shown[-1] == (9, 60)


# ---------------------------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def lake(spark, pipeline):
    """The pipeline's tables as pandas frames, read with the native Parquet reader (``frame(name)``)."""
    from jobs.catalog import table_spec
    from jobs.tables import EmbeddedLakehouse

    lh = EmbeddedLakehouse(spark, str(pipeline.warehouse))
    cache: dict[str, pd.DataFrame] = {}

    def frame(name: str) -> pd.DataFrame:
        if name not in cache:
            cache[name] = lh.read(table_spec(name)).toPandas()
        return cache[name]

    return frame


def _check_bronze(ns, t, conf):
    rejects = t("bronze.rejects")
    docs = t("bronze.documents")
    got = dict(zip(ns["rejects_by_reason"]["reason"], ns["rejects_by_reason"]["records"], strict=True))
    assert got == dict(Counter(rejects["reason"]))
    by_file = dict(zip(ns["docs_by_file"]["file"], ns["docs_by_file"]["docs"], strict=True))
    assert by_file == dict(Counter(docs["source_file"].str.rsplit("/", n=1).str[-1]))
    counts = docs["domain"].value_counts(dropna=False)
    counts = {(d if isinstance(d, str) else None): n for d, n in counts.items()}
    # order by docs desc, domain (Spark puts a null domain first)
    want = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0] is not None, kv[0] or ""))[:TOP_N]
    top = ns["top_domains"]
    # A null domain (chat records have no URL) may come back as NaN or None.
    domains = [d if isinstance(d, str) else None for d in top["domain"]]
    assert list(zip(domains, top["docs"], strict=True)) == want
    assert len(ns["gates"]) == len(t("audit.expectations"))
    ingest_runs = t("audit.runs")
    ingest_runs = ingest_runs[(ingest_runs["stage"] == "ingest") & (ingest_runs["status"] != "running")]
    assert sorted(ns["runs"]["run_id"]) == sorted(ingest_runs["run_id"])


def _check_funnel(ns, t, conf):
    from schemas.silver import STEPS

    bronze, rejects = t("bronze.documents"), t("bronze.rejects")
    silver, filtered = t("silver.documents"), t("silver.filtered")
    funnel = ns["funnel"]
    # the reconciliation: kept = records read − rejected − filtered
    read = len(bronze) + len(rejects)
    assert funnel["remaining"].iloc[0] == read
    assert funnel["remaining"].iloc[-1] == len(silver) == read - len(rejects) - len(filtered)
    assert ns["kept"] == len(silver)
    per_step = filtered["step"].value_counts()
    clean = funnel[funnel["stage"] == "clean"]
    assert list(clean["step"]) == list(STEPS)
    assert list(clean["removed"]) == [per_step.get(s, 0) for s in STEPS]

    reasons = filtered.groupby(["step", "reason"]).size()
    got = ns["filter_reasons"].set_index(["step", "reason"])["docs"]
    assert got.sort_index().to_dict() == reasons.sort_index().to_dict()

    silver = silver.assign(domain=silver["domain"].fillna("(none)"))
    for dim, frame in [("domain", "by_domain"), ("source", "by_source"), ("lang", "by_lang")]:
        want = silver.groupby(dim).agg(docs=("doc_id", "size"), tokens=("n_tokens_est", "sum"))
        got = ns[frame].set_index(dim)[["docs", "tokens"]]
        assert got.sort_index().to_dict() == want.sort_index().to_dict(), dim
        share = ns[frame]["tokens"] / ns[frame]["tokens"].sum()  # rounded to 4 places by the query
        np.testing.assert_allclose(ns[frame]["token_share"], share, rtol=0, atol=5e-5 + 1e-12)
    assert list(ns["by_domain"]["tokens"]) == sorted(ns["by_domain"]["tokens"], reverse=True)

    examples = ns["examples"]
    assert Counter(examples["step"].astype(str)) == {s: min(EXAMPLES, n) for s, n in per_step.items()}
    step_of = filtered.set_index("doc_id")["step"]
    text_of = bronze.set_index("doc_id")["text"]
    for row in examples.itertuples():
        assert step_of[row.doc_id] == row.step
        assert row.snippet == WS.sub(" ", text_of[row.doc_id])[:160]

    # kept: silver's estimate; dropped: ceil(bronze bytes / 4), per step
    lengths = ns["length_summary"].set_index("status")
    assert lengths.loc["kept", "docs"] == len(silver)
    assert lengths.loc["kept", "tokens"] == silver["n_tokens_est"].sum()
    dropped = filtered.merge(bronze[["doc_id", "n_bytes"]], on="doc_id")
    dropped["tokens"] = np.ceil(dropped["n_bytes"] / 4).astype("int64")
    want = dropped.groupby("step").agg(docs=("doc_id", "size"), tokens=("tokens", "sum"))
    got = lengths.drop(index="kept")[["docs", "tokens"]]
    assert got.sort_index().to_dict() == want.sort_index().to_dict()
    assert ns["lengths"]["docs"].sum() == len(bronze)


def _check_scores(ns, t, conf):
    from scipy import stats

    from schemas.scores import PRRC_DIMENSIONS

    silver, ppl, prrc, sim = (
        t("silver.documents"),
        t("scores.perplexity"),
        t("scores.prrc"),
        t("scores.similarity"),
    )
    summary = ns["score_summary"].set_index(["table_name", "signal", "model"])
    for model, n in ppl["model_id"].value_counts().items():
        assert summary.loc[("scores.perplexity", "bpb", model), "docs"] == n

    # PRRC: every rated document of silver (fewer than max_points), histograms over all of them
    rated = prrc[prrc["raters"] == ns["RATERS"]].merge(silver[["doc_id", "n_tokens_est"]], on="doc_id")
    assert len(rated) > 0 and set(ns["points"]["doc_id"]) == set(rated["doc_id"])
    for d in PRRC_DIMENSIONS:
        assert ns["prrc_hist"][d].sum() == len(rated)
        rho = stats.spearmanr(rated[d], rated["n_tokens_est"]).statistic
        assert math.isclose(ns["prrc_length_spearman"][d], rho, rel_tol=1e-9, abs_tol=1e-12), d
    by_length = ns["prrc_by_length"]
    assert by_length["docs"].sum() == len(rated)

    # token-weighted bpb per model and domain
    joined = ppl.merge(silver[["doc_id", "domain"]], on="doc_id")
    joined = joined[joined["domain"].notna()]
    want = joined.groupby(["model_id", "domain"]).agg(
        nll_sum=("nll_sum", "sum"), n_bytes=("n_bytes", "sum"), n_docs=("doc_id", "size")
    )
    want["bpb"] = want["nll_sum"] / (math.log(2) * want["n_bytes"])
    got = ns["bpb"].set_index(["model_id", "domain"]).sort_index()
    assert list(got.index) == list(want.index)
    np.testing.assert_allclose(got["bpb"], want["bpb"], rtol=1e-9)
    assert list(got["n_docs"]) == list(want["n_docs"])
    matrix = ns["bpb_matrix"]
    assert matrix.shape == (joined["domain"].nunique(), 1 + ppl["model_id"].nunique())
    means = matrix.drop(columns="n_docs").mean(axis=1)
    assert list(means) == sorted(means)

    # similarity histograms: every row of each method:benchmark
    want_rows = Counter(sim["method"] + ":" + sim["benchmark"])
    assert {b: int(c.sum()) for b, c in ns["similarity_hist"].items()} == dict(want_rows)


def _check_domains(ns, t, conf):
    estimator = conf.aggregate.domains.estimator
    assert ns["ESTIMATOR"] == estimator
    dc = t("gold.domain_correlations")
    mine = dc[dc["estimator"] == estimator]
    linear = mine[mine["projection"] == "linear"].set_index("domain")
    l2 = mine[mine["projection"] == "l2"].set_index("domain")
    ranked = linear.reset_index().sort_values(["estimate", "domain"], ascending=[False, True])
    per_domain = ns["per_domain"]
    assert list(per_domain["rank"]) == list(range(1, len(linear) + 1))
    assert list(per_domain["domain"]) == list(ranked["domain"])
    assert list(ns["top_domains"]["domain"]) == list(ranked["domain"][:TOP_N])
    assert list(ns["bottom_domains"]["domain"]) == list(ranked["domain"][::-1][:TOP_N])
    assert list(ns["top_domains"]["estimate"]) == sorted(ns["top_domains"]["estimate"], reverse=True)
    got = per_domain.set_index("domain")
    np.testing.assert_array_equal(got["weight_linear"], linear.loc[got.index, "weight"])
    np.testing.assert_array_equal(got["weight_l2"], l2.loc[got.index, "weight"])
    assert math.isclose(got["weight_linear"].sum(), 1.0, abs_tol=1e-9)
    assert math.isclose(got["weight_l2"].sum(), 1.0, abs_tol=1e-9)
    # the chart's top domains: the TOP_N largest weights under the profile's projection
    col = f"weight_{conf.aggregate.domains.projection}"
    top = ns["top_weighted"]
    assert len(top) == TOP_N and list(top[col]) == sorted(got[col], reverse=True)[:TOP_N]
    assert len(ns["heaviest"]) == TOP_N

    chosen = dc[dc["chosen"]]
    assert len(ns["domain_weights"]) == len(chosen)
    assert set(ns["domain_weights"]["estimator"]) == {estimator}
    # the estimators' rank agreement, computed from the linear ranks
    ranks = dc[dc["projection"] == "linear"].pivot(index="domain", columns="estimator", values="rank")
    for row in ns["estimator_agreement"].itertuples():
        d2 = ((ranks[row.estimator_a] - ranks[row.estimator_b]) ** 2).sum()
        n = len(ranks)
        assert row.rank_corr == round(1 - 6 * d2 / (n * (n * n - 1)), 4)
        shared = ((ranks[row.estimator_a] <= 10) & (ranks[row.estimator_b] <= 10)).sum()
        assert row.top10_shared == shared


def _check_selections(ns, t, conf):
    sel = t("gold.selection")
    totals = ns["totals"]
    want = (
        sel.assign(domain=sel["domain"].fillna("(none)"))
        .groupby("strategy")
        .agg(docs=("doc_id", "size"), tokens=("tokens", "sum"), domains=("domain", "nunique"))
    )
    assert totals[["docs", "tokens", "domains"]].sort_index().to_dict() == want.sort_index().to_dict()
    budget = conf.select.token_budget
    np.testing.assert_allclose(totals["budget_share"], totals["tokens"] / budget, rtol=1e-15)
    assert (totals["budget_share"] <= 1).all()

    picked = {s: set(g["doc_id"]) for s, g in sel.groupby("strategy")}
    assert ns["STRATEGIES"] == sorted(picked)
    for a in picked:
        for b in picked:
            jaccard = len(picked[a] & picked[b]) / len(picked[a] | picked[b])
            assert math.isclose(ns["jaccard"].loc[a, b], jaccard, rel_tol=1e-12, abs_tol=1e-15), (a, b)
            also = len(picked[a] & picked[b]) / len(picked[a])
            assert math.isclose(ns["also_picked"].loc[a, b], also, rel_tol=1e-12, abs_tol=1e-15), (a, b)

    shares = ns["domain_shares"]
    np.testing.assert_allclose(shares.sum(axis=1), 1.0, rtol=1e-12)
    by_tokens = sel.groupby(sel["domain"].fillna("(none)"))["tokens"].sum()
    top = sorted(by_tokens.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N]
    assert list(shares.columns[:TOP_N]) == [d for d, _ in top]
    assert shares.columns[-1] == "other" and len(by_tokens) > TOP_N


CHECKS = {
    "01_bronze": _check_bronze,
    "02_corpus_funnel": _check_funnel,
    "03_scores": _check_scores,
    "04_domain_correlations": _check_domains,
    "05_selections": _check_selections,
}


def test_every_check_has_its_notebook():
    assert set(CHECKS) <= {p.stem for p in NOTEBOOKS}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path, pipeline, lake, monkeypatch, capsys):
    import matplotlib.pyplot as plt

    from jobs.config import load_conf

    monkeypatch.setenv("CORPUSLAKE_CONF", str(pipeline.conf))
    monkeypatch.setenv("CORPUSLAKE_TOP_N", str(TOP_N))
    monkeypatch.setenv("CORPUSLAKE_EXAMPLES", str(EXAMPLES))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    plt.switch_backend("Agg")  # pyplot may have been imported before the variable was set
    ns = runpy.run_path(str(path), run_name="__main__")
    out = capsys.readouterr().out
    assert f"lakehouse: {pipeline.warehouse} (embedded engine)" in out
    assert plt.get_fignums() == [], "every figure is closed after it is shown"
    check = CHECKS.get(path.stem)
    if check is not None:
        check(ns, lake, load_conf(pipeline.conf))
