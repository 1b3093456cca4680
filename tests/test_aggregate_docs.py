"""aggregate_docs: BETR's sample, positives and threshold, the stage (the page classifier itself:
tests/test_pageclf.py; RDS+'s round robin: tests/test_rds.py)."""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import yaml
from pyspark.sql import functions as F

from jobs import aggregate_docs as agg
from jobs.methods.betr import (
    balanced_targets,
    betr,
    betr_benchmarks,
    betr_labels,
    betr_sample,
    token_threshold,
)
from jobs.methods.sampling import unit_hash
from jobs.runtime import EXIT_OK, EXIT_USAGE, UsageError, run_job
from jobs.tables import EmbeddedLakehouse
from schemas import gold, scores, silver
from udfs.quality import SIGNALS

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from pages import CLF  # noqa: E402
from pages import text as _text  # noqa: E402

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
W_STAR = {"rps_doc_word_count": 0.7, "rps_doc_mean_word_length": 0.3}


# ------------------------------------------------------------------------------------------------ BETR


def _sim_rows(spark, rows):
    return spark.createDataFrame(rows, "doc_id string, benchmark string, best_rank int, max_cosine double")


def test_betr_positions_balance_benchmarks(spark):
    # arc has many targets (three documents at rank 1), piqa few: a plain min over best ranks would take
    # d1, d2, d3, d5 (all rank 1); positions take each benchmark's best in turn.
    sim = _sim_rows(
        spark,
        [
            ("d1", "arc", 1, 0.9),
            ("d2", "arc", 1, 0.8),
            ("d3", "arc", 1, 0.7),
            ("d4", "arc", 2, 0.6),
            ("d7", "arc", None, 0.1),
            ("d5", "piqa", 1, 0.9),
            ("d6", "piqa", 3, 0.5),
            ("d1", "piqa", 5, 0.4),
            ("d7", "piqa", None, 0.2),
        ],
    )
    got = {r["doc_id"]: (r["position"], r["label"]) for r in betr_labels(sim, 0.5, "per_benchmark").collect()}
    assert got == {
        "d1": (1, 1),
        "d5": (1, 1),
        "d2": (2, 1),
        "d6": (2, 1),
        "d3": (3, 0),
        "d4": (4, 0),
        "d7": (None, 0),  # ranked by no benchmark: worst, never a positive
    }
    # ceil(0.1 * 7) = 1 positive: ties at position 1 go by doc_id
    assert [r["doc_id"] for r in betr_labels(sim, 0.1, "per_benchmark").filter("label = 1").collect()] == [
        "d1"
    ]
    # min_rank (the paper, over balanced targets): the best rank over every benchmark, ties by max cosine
    # then doc_id: d1 (1, .9), d5 (1, .9), d2 (1, .8), d3 (1, .7) are the ceil(0.5 * 7) = 4 positives.
    got = {r["doc_id"]: (r["position"], r["label"]) for r in betr_labels(sim, 0.5).collect()}
    assert got == {
        "d1": (1, 1),
        "d5": (1, 1),
        "d2": (1, 1),
        "d3": (1, 1),
        "d4": (2, 0),
        "d6": (3, 0),
        "d7": (None, 0),
    }
    assert [r["doc_id"] for r in betr_labels(sim, 0.25).filter("label = 1").orderBy("doc_id").collect()] == [
        "d1",
        "d5",
    ]


def test_betr_sample_and_balanced_targets(spark):
    docs = spark.createDataFrame([(f"d{i:03d}",) for i in range(200)], "doc_id string")
    assert betr_sample(docs, 200, None, 0) is docs and betr_sample(docs, 200, 500, 0) is docs
    h = {r["doc_id"]: r["h"] for r in docs.select("doc_id", unit_hash(4, "betr-sample").alias("h")).collect()}
    got = {r["doc_id"] for r in betr_sample(docs, 200, 50, 4).collect()}
    assert got == {d for d, x in h.items() if x < 0.25} and 30 < len(got) < 70
    assert got <= {r["doc_id"] for r in betr_sample(docs, 200, 100, 4).collect()}  # nested samples

    rows = [
        (f"{b}|train|{k}", b, f"text {b} {k}")
        for b, n in (("arc", 5), ("piqa", 3), ("mmlu", 4))
        for k in range(n)
    ]
    targets = spark.createDataFrame(rows, "doc_id string, benchmark string, text string")
    th = {
        r["doc_id"]: r["h"]
        for r in targets.select("doc_id", unit_hash(1, "betr-targets").alias("h")).collect()
    }
    got = balanced_targets(targets, 1).collect()
    want = set()
    for b in ("arc", "piqa", "mmlu"):
        want |= set(sorted((d for d, bb, _ in rows if bb == b), key=lambda d: (th[d], d))[:3])
    assert {r["doc_id"] for r in got} == want and set(got[0].asDict()) == {"doc_id", "benchmark", "text"}
    even = targets.filter(F.col("benchmark") != "arc").filter(~F.col("doc_id").endswith("3"))
    assert balanced_targets(even, 1) is even


def test_betr_benchmarks_by_mode():
    present = ["piqa", "arc", "hellaswag"]
    assert betr_benchmarks(present, "aware", None) == ["arc", "hellaswag", "piqa"]
    assert betr_benchmarks(present, "aware", ["piqa", "arc"]) == ["arc", "piqa"]
    assert betr_benchmarks(present, "blind", ["arc"]) == ["hellaswag", "piqa"]
    with pytest.raises(UsageError, match="none is left"):
        betr_benchmarks(present, "blind", present)
    with pytest.raises(UsageError, match="mmlu"):
        betr_benchmarks(present, "aware", ["arc", "mmlu"])
    with pytest.raises(UsageError, match="needs aggregate.betr.eval_benchmarks"):
        betr_benchmarks(present, "blind", None)


def _pool(n: int, seed: int):
    """n documents with a hidden science share q: texts, token counts, and BETR best ranks that follow q."""
    rng = np.random.default_rng(seed)
    q = rng.random(n)
    docs, sim = [], []
    for i in range(n):
        text = _text(rng, q[i], int(rng.integers(20, 120)))
        docs.append((f"doc{i:04d}", text, math.ceil(len(text.encode()) / 4)))
    for b, noise in (("arc", 0.1), ("piqa", 0.2)):
        key = q + rng.normal(0, noise, n)
        order = np.argsort(-key, kind="stable")
        rank = np.empty(n, dtype=int)
        rank[order] = np.arange(1, n + 1)
        for i in range(n):
            sim.append((f"doc{i:04d}", b, int(rank[i]) if rank[i] <= n // 3 else None, float(key[i])))
    return docs, sim


def test_betr_distils_the_ranked_sample_into_the_pool(spark):
    """Ranks cover a sample of 200 of the 400 documents; the classifier trains on the sample (half held out,
    one negative per positive) and scores all 400; the threshold keeps the share of the pool's tokens."""
    docs_rows, sim_rows = _pool(400, seed=1)
    docs = spark.createDataFrame(docs_rows, "doc_id string, text string, n_tokens long")
    sample = {d for d, *_ in docs_rows[::2]}
    sim = _sim_rows(spark, [r for r in sim_rows if r[0] in sample])
    hold: list = []
    res = betr(
        docs,
        sim,
        positive_share=0.2,
        keep_token_share=0.3,
        clf=CLF,
        combine="per_benchmark",
        negatives_per_positive=1.0,
        heldout_share=0.5,
        hold=hold,
    )
    try:
        pool = res.scores.toPandas().set_index("doc_id")
    finally:
        res.scores.unpersist()
        for x in hold:
            x.unpersist()
    assert len(pool) == 400 and pool["p_include"].between(0, 1).all()
    labels = betr_labels(sim, 0.2, "per_benchmark").toPandas().set_index("doc_id")
    held_ids = {
        r["doc_id"]
        for r in docs.filter(unit_hash(CLF.seed, "betr-heldout") < 0.5).collect()
        if r["doc_id"] in sample
    }
    train_pos = int(labels.drop(index=sorted(held_ids))["label"].sum())
    assert res.n_ranked == 200 and res.n_positive == 40 and res.n_heldout == len(held_ids)
    assert 70 < len(held_ids) < 130 and res.n_train == 2 * train_pos  # one negative per positive

    t = res.threshold.threshold
    kept = pool.loc[pool["p_include"] >= t, "n_tokens"].sum() / pool["n_tokens"].sum()
    assert abs(kept - 0.3) <= 0.01  # the requested share of the pool, within 1%
    assert res.threshold.kept_share == pytest.approx(kept, abs=1e-12)
    held = labels.loc[sorted(held_ids)].join(pool)
    pk = int(((held["label"] == 1) & (held["p_include"] >= t)).sum())
    nk = int(((held["label"] == 0) & (held["p_include"] >= t)).sum())
    p = int(held["label"].sum())
    assert res.heldout_kept == (pk, p, nk, len(held) - p) and pk / p > nk / (len(held) - p)


def test_token_threshold_picks_the_closest_share(spark):
    rows = [("a", 0.9, 10), ("b", 0.8, 30), ("c", 0.8, 20), ("d", 0.5, 25), ("e", 0.1, 15)]
    df = spark.createDataFrame(rows, "doc_id string, p_include double, n_tokens long")
    # cumulative by distinct p: 0.9 → 10%, 0.8 → 60%, 0.5 → 85%, 0.1 → 100%
    t = token_threshold(df, 0.5)
    assert (t.threshold, t.kept_share, t.kept_docs, t.kept_tokens, t.total_tokens) == (0.8, 0.6, 3, 60, 100)
    assert token_threshold(df, 1.0).threshold == 0.1
    assert token_threshold(df, 0.05).threshold == 0.9


# ----------------------------------------------------------------------------------------- the stage


def _silver_row(doc_id: str, domain: str | None, text: str) -> dict:
    n = len(text.encode())
    return {
        "doc_id": doc_id,
        "url": None,
        "domain": domain,
        "source": "s",
        "lang": "en",
        "lang_score": 1.0,
        "text": text,
        "n_bytes": n,
        "n_bytes_raw": n,
        "n_tokens_est": math.ceil(n / 4),
        "text_hash": doc_id,
        "contamination": None,
        "clean_run_id": "clean-0",
        "cleaned_at": NOW,
    }


def _similarity_row(doc_id, benchmark, method, best_rank, cos) -> dict:
    return {
        "doc_id": doc_id,
        "benchmark": benchmark,
        "method": method,
        "model_id": "emb",
        "revision": "main",
        "best_rank": best_rank,
        "max_cosine": cos,
        "n_targets": 3,
        "pool_docs": 120,
        "run_id": "sim-0",
        "scored_at": NOW,
    }


def _correlation_row(domain: str, weight: float, chosen: bool) -> dict:
    return {
        "domain": domain,
        "estimator": "spearmanr",
        "projection": "linear" if chosen else "l2",
        "benchmark_group": "arc",
        "estimate": 0.5,
        "rank": 1,
        "tau": 1.0,
        "weight": weight,
        "chosen": chosen,
        "n_models": 3,
        "n_docs": 10,
        "domain_tokens": 100,
        "token_share": 0.25,
        "run_id": "dom-0",
        "computed_at": NOW,
        "table_versions": "{}",
    }


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """120 silver documents over 4 domains (science-heavy sci.org), similarity for betr and rds."""
    base = tmp_path_factory.mktemp("aggdocs")
    lh = EmbeddedLakehouse(spark, str(base / "wh"))
    rng = np.random.default_rng(3)
    domains = ["sci.org", "news.com", "blog.net", None]
    docs, sim = [], []
    for i in range(120):
        domain = domains[i % 4]
        q = float(np.clip((0.8 if domain == "sci.org" else 0.2) + rng.normal(0, 0.15), 0, 1))
        doc = f"doc{i:03d}"
        docs.append(_silver_row(doc, domain, _text(rng, q, int(rng.integers(20, 80)))))
        for b in ("arc", "piqa", "mmlu"):
            cos = float(q + rng.normal(0, 0.05))
            sim.append(_similarity_row(doc, b, "betr", None, cos))
            if i < 90:  # rds scored the first 90 documents only
                sim.append(_similarity_row(doc, b, "rds", None, cos))
    # best ranks: per benchmark, the top 40 by cosine
    for b in ("arc", "piqa", "mmlu"):
        rows = sorted(
            (r for r in sim if r["benchmark"] == b and r["method"] == "betr"),
            key=lambda r: (-r["max_cosine"], r["doc_id"]),
        )
        for k, r in enumerate(rows[:40]):
            r["best_rank"] = k + 1
    sim.append(_similarity_row("gone", "arc", "rds", None, 0.99))  # not in silver any more: ignored
    lh.write(spark.createDataFrame(docs, silver.DOCUMENTS.schema), silver.DOCUMENTS, "overwrite")
    lh.write(spark.createDataFrame(sim, scores.SIMILARITY.schema), scores.SIMILARITY, "overwrite")
    budget = round(sum(d["n_tokens_est"] for d in docs) / 4)
    corr = [
        _correlation_row("sci.org", 1.0, True),
        _correlation_row("news.com", 0.0, True),
        _correlation_row("news.com", 1.0, False),  # not the chosen estimator/projection: ignored
    ]
    lh.write(
        spark.createDataFrame(corr, gold.DOMAIN_CORRELATIONS.schema), gold.DOMAIN_CORRELATIONS, "overwrite"
    )
    # quality signals for the first 100 documents, and Meta-rater's w* over two of them
    qual = [
        {
            "doc_id": f"doc{i:03d}",
            **{sig.name: float(rng.uniform(1, 50)) for sig in SIGNALS},
            "kept": True,
            "clean_run_id": "clean-0",
        }
        for i in range(100)
    ]
    lh.write(spark.createDataFrame(qual, scores.QUALITY.schema), scores.QUALITY, "overwrite")
    weights = [
        ("final", s, w, "fit", None, None, None, None, None, "w-0", NOW, "{}") for s, w in W_STAR.items()
    ]
    weights.append(
        ("p0", "rps_doc_word_count", 1.0, "proposal", None, None, None, None, None, "w-0", NOW, "{}")
    )
    lh.write(spark.createDataFrame(weights, gold.RATER_WEIGHTS.schema), gold.RATER_WEIGHTS, "overwrite")

    def args(**betr) -> argparse.Namespace:
        data = {
            "profile": "test",
            "spark": {"master": "local[2]", "shuffle_partitions": 2, "progress": False, "log_level": "ERROR"},
            "storage": {"engine": "embedded", "warehouse": str(base / "wh")},
            "ingest": {"inputs": [{"name": "x", "path": str(base / "none")}]},
            "aggregate": {
                "betr": {"heldout_share": 0.3, **betr},
                "classifier": {
                    "fasttext": {"betr": {"bucket": 1 << 14}, "pplcorr": {"bucket": 1 << 14}},
                    "num_features": 4096,
                    "max_iter": 8,
                    "reg_param": 0.001,
                },
            },
            # a quarter of the pool's tokens: BETR's threshold keeps that share
            "select": {"seed": 5, "token_budget": budget},
        }
        path = base / f"c{len(list(base.glob('c*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(data))
        return argparse.Namespace(conf=str(path), overrides=[], run_id=None, verbose=False)

    return lh, docs, qual, args


def _run(args) -> tuple[int, str]:
    out = io.StringIO()
    code = run_job(agg.STAGE, args, agg.aggregate_docs, agg.READS, out=out, preflight=agg.preflight)
    return code, out.getvalue()


def test_stage_writes_every_computable_strategy(lake):
    lh, docs, qual, args = lake
    code, out = _run(args(mode="blind", eval_benchmarks=["mmlu"]))
    assert code == EXIT_OK, out
    rows = lh.read(gold.DOC_SCORES).toPandas()
    counts = rows.groupby("strategy").size().to_dict()
    assert counts == {"betr": 120, "pplcorr": 120, "metarater": 100, "rds": 90, "random": 120}
    assert "blind (arc, piqa; betr ranks, min_rank)" in out and "skipped" not in out
    assert "fasttext trained on" in out and "target 25.00% = select.token_budget" in out
    assert not rows.duplicated(["doc_id", "strategy"]).any() and np.isfinite(rows["score"]).all()

    tokens = {d["doc_id"]: d["n_tokens_est"] for d in docs}
    domain = {d["doc_id"]: d["domain"] for d in docs}
    assert all(rows["n_tokens"] == rows["doc_id"].map(tokens))
    assert all(rows["domain"].fillna("-") == rows["doc_id"].map(domain).fillna("-"))

    betr = rows[rows["strategy"] == "betr"]
    t = float(betr["detail"].iloc[0].split()[0].removeprefix("threshold="))
    assert all(
        betr["detail"] == [f"threshold={t!r} kept={'true' if s >= t else 'false'}" for s in betr["score"]]
    )
    assert betr["score"].between(0, 1).all() and f"threshold {t:.6g}" in out

    ppl = rows[rows["strategy"] == "pplcorr"].set_index("doc_id")
    sci = [d for d in ppl.index if domain[d] == "sci.org"]
    assert all(ppl.loc[sci, "detail"] == "spearmanr/linear include_domain=true")
    # fastText with the paper's settings (lr 0.1, 5 epochs) barely moves from 0.5 on 120 pages, but the order,
    # which is all the selection uses, separates them: the share of (sci, other) pairs in the right order.
    other = ppl.drop(index=sci)["score"].to_numpy()
    assert np.mean([s > o for s in ppl.loc[sci, "score"] for o in other]) > 0.95

    rds = rows[rows["strategy"] == "rds"].sort_values("score", ascending=False)
    assert sorted(rds["score"]) == [-float(k) for k in range(90, 0, -1)] and "gone" not in set(rds["doc_id"])
    assert list(rds["detail"].iloc[:4]) == [
        "task=arc round=1",
        "task=mmlu round=1",
        "task=piqa round=1",
        "task=arc round=2",
    ]

    rnd = rows[rows["strategy"] == "random"]
    assert rnd["score"].between(0, 1, inclusive="left").all() and rnd["score"].nunique() == 120

    meta = rows[rows["strategy"] == "metarater"].set_index("doc_id")
    want = 0.0
    for sig in ("rps_doc_mean_word_length", "rps_doc_word_count"):  # summed in this order
        x = np.array([r[sig] for r in qual])
        want = want + W_STAR[sig] * 5 * (x - x.min()) / (x.max() - x.min())
    assert meta.loc[[r["doc_id"] for r in qual], "score"].to_numpy() == pytest.approx(want, abs=1e-9)

    versions = {s: json.loads(v) for s, v in rows.groupby("strategy")["table_versions"].first().items()}
    sv, sim_v, corr_v = (
        lh.version(x) for x in (silver.DOCUMENTS, scores.SIMILARITY, gold.DOMAIN_CORRELATIONS)
    )
    assert versions["betr"] == versions["rds"] == {"silver.documents": sv, "scores.similarity": sim_v}
    assert versions["pplcorr"] == {"silver.documents": sv, "gold.domain_correlations": corr_v}
    assert versions["random"] == {"silver.documents": sv}
    assert versions["metarater"] == {
        "silver.documents": sv,
        "gold.rater_weights": lh.version(gold.RATER_WEIGHTS),
        "scores.quality": lh.version(scores.QUALITY),
    }


def test_stage_refuses_bad_betr_conf(lake, capsys):
    lh, *_, args = lake
    code, _ = _run(args(mode="blind"))
    assert code == EXIT_USAGE and "eval_benchmarks is not set" in capsys.readouterr().err
    code, _ = _run(args(eval_benchmarks=["arc", "hellaswag"]))
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "hellaswag" in err
    code, _ = _run(args(keep_token_share=0.5))  # the budget keeps 25%: two knobs that disagree
    err = capsys.readouterr().err
    assert (
        code == EXIT_USAGE and "aggregate.betr.keep_token_share 0.5 disagrees with select.token_budget" in err
    )
