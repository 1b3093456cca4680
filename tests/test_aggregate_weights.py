"""Meta-rater weights: normalization, Q, proposals, the fit and the stage, against numpy/pandas references."""

from __future__ import annotations

import argparse
import io
import json
import math
import re
from collections import Counter
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
import yaml
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType

from jobs import aggregate_weights as aw
from jobs import freshness
from jobs.config import load_conf
from jobs.methods.metarater import (
    dirichlet_proposals,
    metarater_scores,
    n_selected,
    normalize,
    proposal_ids,
    proposal_tops,
    q_score,
    q_scores,
    signal_frame,
    signal_table_logs,
)
from jobs.methods.metarater_proxy import proxy_lm_query, read_proxy_results
from jobs.runtime import EXIT_OK, EXIT_USAGE, UsageError, run_job
from jobs.tables import EmbeddedLakehouse
from schemas import gold, ref, scores, silver
from schemas.base import TableSpec
from udfs.quality import compute_signals

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
GOOD = "question answer energy light plant cell water reaction science experiment measure result".split()
BAD = "buy cheap click offer deal free shipping sale best price now limited".split()
N_DOCS = 120


def _norm_reference(pdf: pd.DataFrame, signals: list[str]) -> pd.DataFrame:
    """Min–max to [0, 5] per column as pandas computes it; labels v·5/(6−1); a constant column → 0."""
    out = pd.DataFrame({"doc_id": pdf["doc_id"]})
    for s in signals:
        v = pdf[s].astype(float)
        lo, hi = v.min(), v.max()
        if s.endswith("_label"):
            out[s] = v * 5 / (6 - 1)
        elif hi == lo:
            out[s] = 0.0
        else:
            out[s] = (v - lo) / (hi - lo) * 5
    return out


def _q_reference(norm: np.ndarray, w: np.ndarray) -> np.ndarray:
    q = w[0] * norm[:, 0]
    for j in range(1, len(w)):
        q = q + w[j] * norm[:, j]
    return q


# ------------------------------------------------------------------------------- pure transforms


def test_normalize_equals_pandas_min_max(spark):
    rng = np.random.default_rng(3)
    n = 57
    pdf = pd.DataFrame(
        {
            "doc_id": [f"d{i:03d}" for i in range(n)],
            "professionalism": rng.uniform(0.3, 4.7, n),
            "rps_doc_word_count": rng.integers(10, 5000, n).astype(float),
            "rps_doc_lorem_ipsum": np.zeros(n),  # constant over the pool
            "reasoning_label": rng.integers(0, 6, n).astype(float),
            "rps_doc_unigram_entropy": rng.normal(-2.0, 3.0, n),
        }
    )
    signals = [c for c in pdf.columns if c != "doc_id"]
    actual = normalize(spark.createDataFrame(pdf), signals).toPandas().sort_values("doc_id")
    expected = _norm_reference(pdf, signals)
    assert list(actual.columns) == ["doc_id", *signals]
    for s in signals:
        assert np.array_equal(actual[s].to_numpy(), expected[s].to_numpy()), s
    assert actual["rps_doc_lorem_ipsum"].eq(0.0).all()
    assert actual[signals].min().min() >= 0.0 and actual[signals].max().max() <= 5.0


def test_q_score_equals_numpy(spark):
    rng = np.random.default_rng(4)
    signals = ["professionalism", "readability", "reasoning"]
    norm = rng.uniform(0, 5, (40, 3))
    ids = [f"d{i:02d}" for i in range(40)]
    df = spark.createDataFrame(
        [(i, *map(float, row)) for i, row in zip(ids, norm, strict=True)], ["doc_id", *signals]
    )
    w = rng.dirichlet(np.ones(3))
    weights = dict(zip(signals, map(float, w), strict=True))
    actual = q_score(df, weights).toPandas().set_index("doc_id").loc[ids, "q"].to_numpy()
    assert np.array_equal(actual, _q_reference(norm, w))
    np.testing.assert_allclose(actual, norm @ w, rtol=1e-15, atol=1e-12)
    # Every proposal at once gives the same numbers as one q_score per vector.
    props = {"p000": weights, "p001": dict(zip(signals, [0.0, 0.25, 0.75], strict=True))}
    many = q_scores(df, props).toPandas()
    for wid, ws in props.items():
        got = many[many.weights_id == wid].set_index("doc_id").loc[ids, "q"].to_numpy()
        assert np.array_equal(got, _q_reference(norm, np.array(list(ws.values()))))
    with pytest.raises(UsageError, match="cleanliness"):
        q_score(df, {"cleanliness": 1.0})


@pytest.mark.parametrize("decimals", [None, 1])
def test_proposal_tops_equal_the_ranked_pool_and_rank_few_rows(spark, decimals):
    """Each proposal's top n by Q from a per-proposal cut plus an exact rank of the rows above it equals
    ranking every (proposal, document) Q; with distinct Q only about n rows per proposal are ranked."""
    rng = np.random.default_rng(6)
    signals = ["professionalism", "readability", "reasoning"]
    norm = rng.uniform(0, 5, (2000, 3))
    if decimals is not None:
        norm = norm.round(decimals)  # many ties in Q, broken by doc_id
    ids = [f"d{i:04d}" for i in range(2000)]
    df = spark.createDataFrame(
        [(i, *map(float, row)) for i, row in zip(ids, norm, strict=True)], ["doc_id", *signals]
    )
    props = dirichlet_proposals(signals, 5, seed=3)
    hold: list = []
    got = proposal_tops(df, props, 300, 2000, hold).toPandas()
    ranked = hold[0].count()  # the rows jobs.ordered ranked: the candidates at or above each cut
    for h in hold:
        h.unpersist()
    for wid, w in props.items():
        q = _q_reference(norm, np.array([w[s] for s in signals]))
        want = pd.DataFrame({"doc_id": ids, "q": q}).sort_values(["q", "doc_id"], ascending=[False, True])
        g = got[got.weights_id == wid].sort_values("rank")
        assert list(g.doc_id) == list(want.doc_id[:300]) and list(g["rank"]) == list(range(1, 301))
        assert np.array_equal(g.q.to_numpy(), want.q.to_numpy()[:300])
    if decimals is None:
        assert 5 * 300 <= ranked <= 5 * 305  # not 5 x 2,000


def test_dirichlet_proposals_reproducible_per_seed():
    signals = ["a", "b", "c", "d"]
    p1 = dirichlet_proposals(signals, 12, seed=5)
    p2 = dirichlet_proposals(signals, 12, seed=5)
    p3 = dirichlet_proposals(signals, 12, seed=6)
    assert p1 == p2 and p1 != p3
    assert list(p1) == [f"p{i:03d}" for i in range(12)]
    draws = np.random.default_rng(5).dirichlet(np.ones(4), size=12)
    got = np.array([[p1[i][s] for s in signals] for i in p1])
    np.testing.assert_allclose(got, draws, rtol=1e-15)
    assert (got >= 0).all() and np.abs(got.sum(axis=1) - 1).max() < 1e-12
    assert proposal_ids(1001)[-1] == "p1000"


def test_n_selected_rounds_before_ceiling():
    assert n_selected(0.15, 100) == 15  # 0.15 * 100 = 15.000000000000002 in floating point
    assert n_selected(0.15, 101) == 16
    assert n_selected(0.001, 10) == 1


W_TRUE = np.array([0.45, 0.3, 0.15, 0.1])  # the table proxy test plants these


def test_gate_checks_sums_and_proposal_count(spark):
    from jobs.gates import validate

    rows = [
        {"weights_id": wid, "signal": s, "weight": w, "method": "proposal", "run_id": "r", "computed_at": NOW}
        for wid, ws in {"p000": (0.5, 0.5), "p001": (0.7, 0.2)}.items()
        for s, w in zip(("a", "b"), ws, strict=True)
    ]
    df = spark.createDataFrame([{**r, "table_versions": "{}"} for r in rows], gold.RATER_WEIGHTS.schema)
    res = validate(aw.weights_check(df), gold.RATER_WEIGHTS, {"checked": True, "signals": 2, "proposals": 3})
    failed = {(e["expectation"], e["column"]) for e in res.expectations if not e["success"]}
    assert failed == {
        ("expect_column_values_to_be_between", gold.WEIGHT_SUM),  # p001 sums to 0.9
        ("expect_column_values_to_be_in_set", gold.N_PROPOSALS),  # 2 proposals, 3 configured
    }


# ------------------------------------------------------------------------------- a tiny lakehouse


def _docs(n: int) -> list[dict]:
    """Documents whose share of benchmark-like words rises with a hidden quality u."""
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        u = i / (n - 1)
        words = [
            str(rng.choice(GOOD)) if rng.random() < u else str(rng.choice(BAD)) for _ in range(30 + i % 17)
        ]
        text = " ".join(words[:12]).capitalize() + ".\n" + " ".join(words[12:]) + "!"
        out.append({"doc_id": f"doc-{i:04d}", "u": u, "text": text, "domain": f"site{i % 5}.com"})
    return out


EDU = TableSpec(
    name="scores.edu",
    schema=StructType(
        [
            StructField("doc_id", StringType(), False),
            StructField("int_score", IntegerType(), False),
            StructField("score", DoubleType(), True),
            StructField("model", StringType(), False),
        ]
    ),
    description="a per-document classifier score, written by something other than corpuslake",
)


def _edu_rows(docs: list[dict]) -> list[dict]:
    """scores.edu: every document but doc-0007, a class 0-10 and a score (NaN for doc-0009)."""
    rng = np.random.default_rng(5)
    rows = [
        {"doc_id": d["doc_id"], "int_score": int(rng.integers(0, 11)), "score": rng.normal(), "model": "m"}
        for d in docs
        if d["doc_id"] != "doc-0007"
    ]
    rows[8]["score"] = float("nan")  # doc-0009
    return rows


def _write_lake(spark, lh, docs: list[dict], unrated: set[str]):
    rng = np.random.default_rng(1)
    silver_rows = [
        {
            "doc_id": d["doc_id"],
            "url": None,
            "domain": d["domain"],
            "source": "t",
            "lang": "en",
            "lang_score": 1.0,
            "text": d["text"],
            "n_bytes": len(d["text"].encode()),
            "n_bytes_raw": len(d["text"].encode()),
            "n_tokens_est": math.ceil(len(d["text"].encode()) / 4),
            "text_hash": d["doc_id"],
            "contamination": None,
            "clean_run_id": "clean-0",
            "cleaned_at": NOW,
        }
        for d in docs
    ]
    lh.write(spark.createDataFrame(silver_rows, silver.DOCUMENTS.schema), silver.DOCUMENTS, "overwrite")
    quality = [
        {"doc_id": d["doc_id"], **compute_signals(d["text"]), "kept": True, "clean_run_id": "clean-0"}
        for d in docs
    ]
    lh.write(spark.createDataFrame(quality, scores.QUALITY.schema), scores.QUALITY, "overwrite")

    def prrc_row(d, raters, when, shift=0.0):
        u = d["u"]
        dims = {
            "professionalism": 5 * u,
            "readability": float(rng.uniform(0, 5)),
            "reasoning": 5 * u * u,
            "cleanliness": float(rng.uniform(0, 5)),
        }
        row = {"doc_id": d["doc_id"], "raters": raters, "n_tokens": 50, "run_id": "prrc", "scored_at": when}
        for k, v in dims.items():
            v = min(5.0, max(0.0, v + shift))
            row[k], row[f"{k}_label"] = v, int(round(v))
        return row

    rows = [prrc_row(d, "set=new", NOW) for d in docs if d["doc_id"] not in unrated]
    # An older rater set that rated fewer documents: never used.
    rows += [prrc_row(d, "set=old", NOW + timedelta(days=1), shift=9.0) for d in docs[:10]]
    lh.write(spark.createDataFrame(rows, scores.PRRC.schema), scores.PRRC, "overwrite")
    # Ten target examples (train, dev) and five of the evaluation split, which the proxy never reads.
    bench = [
        (
            "sci",
            ("train", "dev", "test")[k % 3],
            f"q{k}",
            " ".join(str(x) for x in rng.choice(GOOD, 12)) + "?",
            None,
        )
        for k in range(15)
    ]
    bench = [(*b, "f", "r", NOW) for b in bench]
    lh.write(spark.createDataFrame(bench, ref.BENCHMARKS.schema), ref.BENCHMARKS, "overwrite")
    lh.write(spark.createDataFrame(_edu_rows(docs), EDU.schema), EDU, "overwrite")


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """One warehouse for the module: each stage test reads back what its own runs just wrote."""
    tmp_path = tmp_path_factory.mktemp("weights")
    docs = _docs(N_DOCS)
    unrated = {"doc-0003", "doc-0050", "doc-0111"}
    lh = EmbeddedLakehouse(spark, str(tmp_path / "wh"))
    _write_lake(spark, lh, docs, unrated)

    def conf(**weights) -> argparse.Namespace:
        data = {
            "profile": "test",
            "spark": {"master": "local[2]", "shuffle_partitions": 2, "progress": False, "log_level": "ERROR"},
            "storage": {"engine": "embedded", "warehouse": str(tmp_path / "wh")},
            "ingest": {"inputs": [{"name": "x", "path": str(tmp_path / "none")}]},
            "aggregate": {"weights": {"candidates": 2000, "best": 64, **weights}},
        }
        path = tmp_path / f"c{len(list(tmp_path.glob('c*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(data))
        return argparse.Namespace(conf=str(path), overrides=[], run_id=None, verbose=False)

    return lh, docs, unrated, conf


def _run(args) -> tuple[int, str]:
    out = io.StringIO()
    code = run_job(aw.STAGE, args, aw.aggregate_weights, aw.READS, out=out, preflight=aw.preflight)
    return code, out.getvalue()


def test_signal_frame_drops_unrated_and_uses_the_largest_rater_set(lake):
    lh, docs, unrated, _ = lake
    notes: list[str] = []
    df = signal_frame(lh, ["professionalism", "rps_doc_word_count", "cleanliness_label"], notes)
    pdf = df.toPandas().set_index("doc_id")
    assert len(pdf) == N_DOCS - len(unrated) and not set(pdf.index) & unrated
    by_id = {d["doc_id"]: d for d in docs}
    assert pdf["professionalism"].to_dict() == pytest.approx({i: 5 * by_id[i]["u"] for i in pdf.index})
    assert (
        pdf["rps_doc_word_count"]["doc-0000"]
        == compute_signals(by_id["doc-0000"]["text"])["rps_doc_word_count"]
    )
    assert "PRRC rater set: set=new" in notes
    assert any("3 of 120 documents lack a signal" in n and "professionalism 3" in n for n in notes)
    with pytest.raises(UsageError, match="unknown \\['helpfulness'\\].*valid: PRRC professionalism"):
        signal_frame(lh, ["professionalism", "helpfulness"])


def _tokens(text: str) -> list[str]:
    # TOKEN_PATTERN on ASCII text.
    return re.findall(r"[a-z0-9]+|[^\sa-z0-9]", text.lower())


def _lm_reference(selected: list[str], texts: dict[str, str], val: list[str], mu: float) -> float:
    """The builtin proxy's formulas in plain Python for one proposal."""
    train = [_tokens(texts[d]) for d in selected]
    vals = [t for t in (_tokens(v) for v in val) if t]
    vocab = {w for t in train + vals for w in t}
    uni, hist, pair = Counter(), Counter(), Counter()
    for t in train:
        uni.update(t)
        for p, w in zip(["<s>", *t[:-1]], t, strict=True):
            hist[p] += 1
            pair[p, w] += 1
    total = sum(uni.values())
    nll, n = 0.0, 0
    for t in vals:
        for p, w in zip(["<s>", *t[:-1]], t, strict=True):
            p_uni = (uni[w] + 1) / (total + len(vocab))
            nll -= math.log((pair[p, w] + mu * p_uni) / (hist[p] + mu))
            n += 1
    return nll / n


def test_builtin_proxy_moves_no_bigram_arrays(spark):
    """No shuffle or broadcast of the builtin proxy's query carries the documents' bigram arrays: bigrams are
    exploded and counted inside the tasks that read them, and the per-proposal token totals join on
    (doc_id, n_tokens). (A join on the whole cached rows once broadcast 9 MB per task at 16,000 documents.)"""
    docs = spark.createDataFrame(
        [(f"d{i}", f"the cat {i} sat on the mat . a dog {i % 3} ran") for i in range(12)],
        "doc_id string, text string",
    )
    selection = spark.createDataFrame(
        [(f"p{k}", f"d{i}") for k in range(3) for i in range(12) if (i + k) % 2],
        "weights_id string, doc_id string",
    )
    val = spark.createDataFrame([("the cat sat on a mat",), ("a dog ran",)], "text string")
    with proxy_lm_query(selection, docs, val, 10.0) as query:
        plan = spark.sparkContext._jvm.org.apache.spark.sql.execution.ExplainMode.fromString("formatted")
        text = query._jdf.queryExecution().explainString(plan)
        exchanges = re.findall(r"^\(\d+\) (?:Broadcast)?Exchange\n(?:.*\n)*?Input \[\d+\]: (.*)$", text, re.M)
        got = query.toPandas().set_index("weights_id")
    assert len(exchanges) >= 5  # the counts' and totals' joins and aggregations
    assert not [i for i in exchanges if "bigrams" in i], exchanges
    assert list(got.index) == ["p0", "p1", "p2"] and list(got.train_docs) == [6, 6, 6]
    sel = selection.toPandas()
    n_tok = {r.doc_id: len(_tokens(r.text)) for r in docs.collect()}
    for wid, g in sel.groupby("weights_id"):
        assert got.loc[wid, "train_tokens"] == sum(n_tok[d] for d in g.doc_id)


def test_builtin_loop_end_to_end(spark, lake):
    lh, docs, unrated, conf = lake
    # PRRC, scores.quality and an outside table's column (scores.edu, which lacks 2 documents' scores).
    signals = ["professionalism", "reasoning", "readability", "rps_doc_frac_unique_words", "scores.edu.score"]
    code, out = _run(conf(signals=signals, proposals=6, proxy_mu=50.0))
    assert code == EXIT_OK, out
    assert "held-out Spearman" in out and "5 of 120 documents lack a signal" in out

    w = lh.read(gold.RATER_WEIGHTS).toPandas()
    assert sorted(w.weights_id.unique()) == ["final"] + [f"p{i:03d}" for i in range(6)]
    sums = w.groupby("weights_id")["weight"].sum()
    assert (sums - 1).abs().max() < 1e-9 and (w.weight >= 0).all()
    final = w[w.weights_id == "final"].set_index("signal")
    assert list(final.index) == signals and (final.method == "fit").all()
    assert (
        final.n_proposals.iloc[0] == 6 and final.n_candidates.iloc[0] == 2000 and final.n_best.iloc[0] == 64
    )

    # The manifest: each proposal's top ⌈0.15 · 115⌉ = 18 documents by Q, as pandas ranks them.
    sig = signal_frame(lh, signals).toPandas().sort_values("doc_id").reset_index(drop=True)
    assert len(sig) == 115 and not {"doc-0007", "doc-0009", *unrated} & set(sig.doc_id)
    norm = _norm_reference(sig, signals)
    manifest = lh.read(gold.RATER_PROPOSALS).toPandas()
    props = w[w.method == "proposal"]
    for wid, g in props.groupby("weights_id"):
        wv = g.set_index("signal").loc[signals, "weight"].to_numpy()
        ref_q = pd.DataFrame({"doc_id": norm.doc_id, "q": _q_reference(norm[signals].to_numpy(), wv)})
        top = ref_q.sort_values(["q", "doc_id"], ascending=[False, True]).head(18)
        got = manifest[manifest.weights_id == wid].sort_values("rank")
        assert list(got.doc_id) == list(top.doc_id) and list(got["rank"]) == list(range(1, 19))
        assert np.array_equal(got.q.to_numpy(), top.q.to_numpy())

    # The proxy: the bigram LM formulas recomputed in Python from the manifest.
    proxy = lh.read(gold.PROXY_RESULTS).toPandas().set_index("weights_id")
    texts = {d["doc_id"]: d["text"] for d in docs}
    val = [r.text for r in lh.read(ref.BENCHMARKS).filter("split in ('train', 'dev')").collect()]
    assert set(proxy.source) == {"ngram"} and len(proxy) == 6 and len(val) == 10
    assert proxy.detail.iloc[0].endswith("on 10 ref.benchmarks texts (train, dev)")
    for wid, g in manifest.groupby("weights_id"):
        expected = _lm_reference(sorted(g.doc_id), texts, val, 50.0)
        assert proxy.loc[wid, "val_loss"] == pytest.approx(expected, rel=1e-12)
        assert proxy.loc[wid, "train_docs"] == 18
    assert proxy.val_tokens.iloc[0] == sum(len(_tokens(v)) for v in val)
    tv = lh.read(gold.RATER_WEIGHTS).filter(F.col("weights_id") == "final").first()["table_versions"]
    assert {"silver.documents", "scores.prrc", "scores.quality", "scores.edu", "ref.benchmarks"} <= set(
        json.loads(tv)
    )


def test_table_proxy_recovers_known_weights(lake, tmp_path, capsys):
    lh, _, _, conf = lake
    signals = ["professionalism", "reasoning", "readability", "cleanliness"]
    code, out = _run(conf(signals=signals, proposals=64, proxy="table"))
    assert code == EXIT_OK, out
    assert "next: train a proxy model" in out
    w = lh.read(gold.RATER_WEIGHTS).toPandas()
    assert set(w.method) == {"proposal"} and w.weights_id.nunique() == 64
    assert lh.read(gold.RATER_PROPOSALS).count() == 64 * 18

    props = w.pivot(index="weights_id", columns="signal", values="weight")[signals]
    rng = np.random.default_rng(11)
    loss = ((props.to_numpy() - W_TRUE) ** 2).sum(axis=1) + rng.normal(0, 0.002, 64)
    results = pd.DataFrame({"weights_id": props.index, "val_loss": loss})

    bad = tmp_path / "bad.csv"
    pd.concat([results, pd.DataFrame({"weights_id": ["p999"], "val_loss": [1.0]})]).to_csv(bad, index=False)
    assert _run(conf(signals=signals, proposals=64, proxy="table", proxy_results=str(bad)))[0] == EXIT_USAGE
    assert "unknown weights_id ['p999']" in capsys.readouterr().err
    short = tmp_path / "short.jsonl"
    results.iloc[1:].to_json(short, orient="records", lines=True)
    with pytest.raises(UsageError, match=re.escape("no result for 1 of 64 proposals: ['p000']")):
        read_proxy_results(str(short), list(props.index))

    good = tmp_path / "proxy.csv"
    results.to_csv(good, index=False)
    # The demo's leaf settings (LightGBM's 20 rows per leaf allow only stumps on 51 training results).
    small = {"num_leaves": 4, "min_child_samples": 2, "min_data_in_bin": 1}
    code, out = _run(
        conf(signals=signals, proposals=64, proxy="table", proxy_results=str(good), lightgbm=small)
    )
    assert code == EXIT_OK, out
    assert re.search(
        r"fit: LightGBM gbdt, learning rate 0.01, \d+ of 1000 rounds \(early stopping 5, seed 42\), "
        r"trained on 51 proxy results; held-out Spearman 0\.\d+ on the last 13",
        out,
    ), out
    w = lh.read(gold.RATER_WEIGHTS).toPandas()
    final = w[w.weights_id == "final"].set_index("signal").loc[signals]
    assert abs(final.weight.sum() - 1) < 1e-9
    # 51 training results (the last 13 are the early-stopping set): looser than the 256-proposal fit above.
    assert np.abs(final.weight.to_numpy() - W_TRUE).sum() < 0.15
    assert final.heldout_spearman.iloc[0] > 0.8
    # The proposals are carried over unchanged: same weights, same run.
    assert w[w.method == "proposal"].run_id.nunique() == 1 and w.weights_id.nunique() == 65
    proxy = lh.read(gold.PROXY_RESULTS).toPandas()
    assert set(proxy.source) == {"table"} and len(proxy) == 64


def test_any_score_table_is_a_signal(spark, lake):
    """A <layer>.<table>.<column> signal is read and joined like PRRC (the builtin loop test runs the stage
    on one): documents it lacks or scores NaN are left out, a class column normalizes by its k, Q covers it,
    freshness sees its commits; a missing table or column, a text column or a repeated doc_id are errors."""
    lh, docs, unrated, conf = lake
    signals = ["professionalism_label", "scores.edu.score", "scores.edu.int_score"]
    classes = {"scores.edu.int_score": 11}
    notes: list[str] = []
    got = normalize(signal_frame(lh, signals, notes), signals, classes).toPandas().set_index("doc_id")
    prrc = lh.read(scores.PRRC).filter(F.col("raters") == "set=new").toPandas().set_index("doc_id")
    edu = pd.DataFrame(_edu_rows(docs)).set_index("doc_id")
    ids = sorted(set(prrc.index) & set(edu.index) - {"doc-0009"})
    assert sorted(got.index) == ids and len(ids) == N_DOCS - len(unrated) - 2
    assert (
        "5 of 120 documents lack a signal and are left out "
        "(professionalism_label 3, scores.edu.score 2, scores.edu.int_score 1)"
    ) in notes
    v = edu.loc[ids, "score"]
    np.testing.assert_allclose(got.loc[ids, "scores.edu.score"], (v - v.min()) / (v.max() - v.min()) * 5)
    np.testing.assert_allclose(got.loc[ids, "scores.edu.int_score"], edu.loc[ids, "int_score"] / 10 * 5)
    np.testing.assert_allclose(got.loc[ids, "professionalism_label"], prrc.loc[ids, "professionalism_label"])
    weights = {"professionalism_label": 0.5, "scores.edu.score": 0.3, "scores.edu.int_score": 0.2}
    q = metarater_scores(lh, weights, None, classes).toPandas().set_index("doc_id").loc[ids, "score"]
    want = _q_reference(got.loc[ids, list(weights)].to_numpy(), np.array(list(weights.values())))
    assert np.array_equal(q.to_numpy(), want)

    logs = aw.WATCH.files(load_conf(conf(signals=signals, classes=classes).conf))
    assert [p.rsplit("/", 3)[1:] for p in logs] == [["edu", "_delta_log", "*"]]
    assert freshness.file_fingerprints(logs)  # the watch sees the table's commits
    assert signal_table_logs(signals, "s3a://b/wh") == ["s3a://b/wh/scores/edu/_delta_log/*"]

    bad = {
        "scores.nope.x": "no table scores.nope at",
        "scores.edu.missing": "scores.edu has no column ['missing']; its columns: ['doc_id', 'int_score'",
        "scores.edu.model": "scores.edu: a signal must be a numeric column, not model (string)",
    }
    for signal, message in bad.items():
        with pytest.raises(UsageError, match=re.escape(message)):
            signal_frame(lh, [signal])
    twice = TableSpec("scores.edu_twice", EDU.schema, EDU.description)
    rows = _edu_rows(docs)
    lh.write(spark.createDataFrame(rows + rows[:2], EDU.schema), twice, "overwrite")
    with pytest.raises(UsageError, match="edu_twice has 121 rows for 119 documents .* one row per doc_id"):
        signal_frame(lh, ["scores.edu_twice.score"])


TINY_LM = {"n_layer": 1, "n_embd": 16, "n_head": 2, "seq_len": 32, "batch_size": 4, "train_tokens": 512}


def test_trained_proxy_records_losses_and_resumes_after_a_kill(spark, lake, python):
    """proxy: train, two proposals per commit: SIGKILL after the first commit; the rerun trains only the
    other two and keeps the killed run's rows (their run id, their loss)."""
    from tests.conftest import run_killed

    lh, _, _, conf = lake
    signals = ["professionalism", "reasoning", "readability", "rps_doc_frac_unique_words"]
    args = conf(signals=signals, proposals=4, proxy="train", proxy_chunk=2, proxy_model=TINY_LM)
    argv = ["jobs.aggregate_weights", "--conf", args.conf, "--run-id", "killed"]
    proc = run_killed(python, argv, f"after_commit:{gold.PROXY_RESULTS.name}:1")
    assert proc.returncode == -9, proc.stderr[-2000:]
    first = lh.read(gold.PROXY_RESULTS).filter(F.col("source") == "train").toPandas().set_index("weights_id")
    assert sorted(first.index) == ["p000", "p001"] and set(first.run_id) == {"killed"}

    code, out = _run(args)
    assert code == EXIT_OK, out
    assert "proxy (train): 2 proposals trained, 2 reused from earlier runs" in out
    proxy = lh.read(gold.PROXY_RESULTS).toPandas().set_index("weights_id").sort_index()
    assert list(proxy.index) == ["p000", "p001", "p002", "p003"] and set(proxy.source) == {"train"}
    assert (proxy.loc[["p000", "p001"], "run_id"] == "killed").all()
    assert (proxy.loc[["p000", "p001"], "val_loss"] == first.val_loss.sort_index()).all()
    assert proxy.loc["p002":, "run_id"].nunique() == 1 and "killed" not in set(proxy.loc["p002":, "run_id"])
    assert (proxy.train_tokens == 512).all() and (proxy.train_docs > 0).all()
    # The byte tokenizer: the dev set's tokens are its UTF-8 bytes; the loss is a mean NLL per token.
    dev = [r.text for r in lh.read(ref.BENCHMARKS).filter("split in ('train', 'dev')").collect()]
    assert (proxy.val_tokens == sum(len(t.encode()) for t in dev)).all()
    # Nats per byte token: 4 steps already bring it below a uniform guess over the 257 tokens.
    assert proxy.val_loss.between(0.5, math.log(257)).all()
    assert proxy.detail.str.match(r"gpt2 1x16 .*; key [0-9a-f]{16}$").all()
    final = lh.read(gold.RATER_WEIGHTS).filter(F.col("weights_id") == "final").toPandas()
    assert len(final) == len(signals) and final.n_proposals.iloc[0] == 4
