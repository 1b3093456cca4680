"""Perplexity correlations: the SQL estimators and projections against the numpy formulas, the stage end to
end, and load_refs' model-score gates."""

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

from jobs import aggregate_domains as agg
from jobs import load_refs
from jobs.methods import pplcorr
from jobs.runtime import EXIT_GATE, EXIT_OK, EXIT_USAGE, run_job
from jobs.tables import EmbeddedLakehouse
from schemas import gold, ref, scores, silver
from tests.conftest import write_conf

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import pplcorr_reference as oracle  # noqa: E402

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
TOL = 1e-9


def _long(spark, X: np.ndarray, y: np.ndarray, models: list[str], domains: list[str], seed: int = 0):
    """The matrix as the SQL takes it, rows shuffled so nothing can lean on input order."""
    cells = [(m, d, float(X[i, j])) for i, m in enumerate(models) for j, d in enumerate(domains)]
    np.random.default_rng(seed).shuffle(cells)
    bpb = spark.createDataFrame(cells, "model_id string, domain string, bpb double")
    errs = [(m, float(y[i])) for i, m in enumerate(models)][::-1]
    return bpb, spark.createDataFrame(errs, "model_id string, error double")


CASES = ["continuous", "ties", "n2", "n2_y_tied", "n3_equal_columns"]


def _matrix_case(name: str):
    rng = np.random.default_rng(CASES.index(name))
    if name == "continuous":
        X, y = rng.uniform(0.6, 1.4, (9, 20)), rng.uniform(0, 1, 9)
    elif name == "ties":
        # Few distinct values: ties within every column of X and in y, broken by model order.
        X, y = rng.integers(0, 3, (8, 24)) / 2 + 0.5, rng.integers(0, 3, 8) / 4
    elif name == "n2":
        X, y = rng.uniform(0.5, 1.5, (2, 12)), np.array([0.7, 0.2])
        X[:, :3] = 1.0  # both models equal on three domains
    elif name == "n2_y_tied":
        X, y = rng.uniform(0.5, 1.5, (2, 6)), np.array([0.4, 0.4])
    else:  # "n3_equal_columns": constant columns and a y tie
        X, y = rng.uniform(0.5, 1.5, (3, 8)), np.array([0.3, 0.3, 0.9])
        X[:, ::2] = 0.8
    return X, y


@pytest.mark.parametrize("case", CASES)
def test_sql_estimators_equal_the_numpy_formulas(spark, case):
    X, y = _matrix_case(case)
    # Model ids whose order is not the insertion order's reverse, domains named out of order.
    models = sorted(f"model-{i:02d}" for i in range(X.shape[0]))
    domains = [f"d{(7 * j) % X.shape[1]:03d}.example" for j in range(X.shape[1])]
    bpb, errors = _long(spark, X, y, models, domains)
    got = {(r["domain"], r["estimator"]): r for r in pplcorr.estimates(bpb, errors).collect()}
    assert len(got) == 5 * X.shape[1]
    for est, fn in oracle.ESTIMATORS.items():
        want = fn(X, y)
        for j, d in enumerate(domains):
            row = got[(d, est)]
            assert row["n_models"] == X.shape[0]
            assert row["estimate"] == pytest.approx(want[j], abs=TOL), (case, est, d)


def test_ties_go_by_model_order(spark):
    """Two models tied on bpb and error: their ranks follow model_id, so spearmanr is 1, not 1 - 6·2/6."""
    X = np.array([[1.0], [1.0]])
    y = np.array([0.5, 0.5])
    bpb, errors = _long(spark, X, y, ["b-model", "a-model"][::-1], ["only"])
    got = {r["estimator"]: r["estimate"] for r in pplcorr.estimates(bpb, errors).collect()}
    assert got == {"spearmanr": 1.0, "sign_cdf": 0.0, "sign_sign": 0.0, "sign": 0.0, "product": 0.5}


def test_projections_equal_the_numpy_formulas(spark):
    rng = np.random.default_rng(3)
    d = 40
    rows, want = [], {}
    cases = {
        "spearmanr": (np.round(rng.uniform(-1, 1, d), 1), rng.uniform(0.01, 0.1, d)),  # tied estimates
        "sign": (rng.normal(0, 300, d), rng.uniform(0.02, 0.2, d)),  # large: the bisection's guard
        "product": (rng.uniform(0, 1, d), np.r_[1.5, rng.uniform(0.01, 0.05, d - 1)]),
    }
    cases["product"][0][0] = 5.0  # the top domain's tau alone is >= 1: it takes weight 1
    domains = [f"dom{j:02d}" for j in range(d)]
    for est, (e, tau) in cases.items():
        rows += [(domains[j], est, float(e[j]), float(tau[j])) for j in range(d)]
        want[(est, "linear")] = oracle.linear(e, tau)
        want[(est, "l2")] = oracle.l2(e, tau)
    df = spark.createDataFrame(rows, "domain string, estimator string, estimate double, tau double")
    got = pplcorr.project(df).collect()
    assert len(got) == 2 * len(rows)
    by = {(r["estimator"], r["projection"], r["domain"]): r for r in got}
    for est, (e, tau) in cases.items():
        order = np.argsort(-e, kind="stable")  # ties by domain name (= position here)
        for proj in ("linear", "l2"):
            w = np.array([by[(est, proj, dom)]["weight"] for dom in domains])
            assert w == pytest.approx(want[(est, proj)], abs=TOL), (est, proj)
            assert abs(w.sum() - 1) <= TOL and np.all(w <= tau) and np.all(w >= 0)
            ranks = [by[(est, proj, domains[j])]["rank"] for j in order]
            assert ranks == list(range(1, d + 1))
    top = by[("product", "linear", "dom00")]
    assert top["weight"] == 1.0 and top["rank"] == 1


def test_l2_sums_to_one_where_the_plain_bisection_drifts():
    rng = np.random.default_rng(5)
    e, tau = rng.normal(0, 1e-4, 60_000), np.full(60_000, 1 / 20_000)
    w = pplcorr.l2_weights(e, tau)
    plain = oracle.l2(e, tau)
    assert abs(w.sum() - 1) < 1e-12
    assert np.max(np.abs(w - plain)) < 1e-11
    assert np.all((w >= 0) & (w <= tau))


def _ppl_row(doc, model, nll, n_bytes, revision="main", at=NOW):
    return {
        "doc_id": doc,
        "model_id": model,
        "revision": revision,
        "n_tokens": n_bytes // 4,
        "n_bytes": n_bytes,
        "nll_sum": nll,
        "bpb": nll / (math.log(2) * n_bytes),
        "run_id": "ppl-0",
        "scored_at": at,
    }


def test_domain_bpb_is_token_weighted_over_documents_every_model_scored(spark):
    docs = spark.createDataFrame(
        [("a1", "a.com"), ("a2", "a.com"), ("a3", "a.com"), ("b1", "b.com"), ("n1", None)],
        "doc_id string, domain string",
    )
    rows = [
        _ppl_row("a1", "m1", 100.0, 100),
        _ppl_row("a2", "m1", 3000.0, 1000),
        _ppl_row("a1", "m2", 50.0, 100),
        _ppl_row("a2", "m2", 2000.0, 1000),
        _ppl_row("a3", "m1", 9.0, 10),  # m2 never scored a3: left out for both models
        _ppl_row("b1", "m1", 10.0, 10),  # b.com: one document, below min_docs
        _ppl_row("b1", "m2", 10.0, 10),
        _ppl_row("n1", "m1", 10.0, 10),  # no domain
        _ppl_row("n1", "m2", 10.0, 10),
        # an older revision of m2: ignored
        _ppl_row("a1", "m2", 1.0, 100, revision="old", at=datetime(2025, 1, 1, tzinfo=timezone.utc)),
        _ppl_row("a3", "m2", 1.0, 10, revision="old", at=datetime(2025, 1, 1, tzinfo=timezone.utc)),
    ]
    ppl = spark.createDataFrame(rows, scores.PERPLEXITY.schema)
    pool = spark.createDataFrame([("m1",), ("m2",)], "model_id string")
    got = {(r["model_id"], r["domain"]): r for r in pplcorr.domain_bpb(ppl, docs, pool, 2).collect()}
    assert set(got) == {("m1", "a.com"), ("m2", "a.com")}
    m1 = got[("m1", "a.com")]
    assert m1["n_docs"] == 2 and m1["n_bytes"] == 1100
    assert m1["bpb"] == pytest.approx(3100 / (math.log(2) * 1100), abs=1e-12)
    mean_of_docs = (100 / 100 + 3000 / 1000) / 2 / math.log(2)
    assert abs(m1["bpb"] - mean_of_docs) > 0.1
    assert got[("m2", "a.com")]["bpb"] == pytest.approx(2050 / (math.log(2) * 1100), abs=1e-12)
    # min_docs 1 keeps b.com; the stale revision's a3 does not make a3 complete
    low = {
        (r["model_id"], r["domain"]): r["n_docs"] for r in pplcorr.domain_bpb(ppl, docs, pool, 1).collect()
    }
    assert low == {("m1", "a.com"): 2, ("m2", "a.com"): 2, ("m1", "b.com"): 1, ("m2", "b.com"): 1}


def test_gate_catches_estimates_out_of_range_and_weights_not_summing_to_one(spark):
    from jobs.gates import validate

    def row(domain, estimator, estimate, weight):
        rest = (3, 5, 100, 0.3, "r", NOW, "{}")  # n_models .. table_versions
        return (domain, estimator, "linear", "arc", estimate, 1, 0.6, weight, True, *rest)

    rows = [
        row("a.org", "spearmanr", 1.5, 0.6),  # out of [-1, 1]
        row("b.org", "spearmanr", 0.2, 0.3),  # spearmanr weights sum to 0.9
        row("a.org", "product", -0.1, 0.6),  # product is a mean of error x bpb >= 0
        row("b.org", "product", 0.1, 0.4),
        row("a.org", "sign", -40.0, 0.5),  # sign is unbounded
        row("b.org", "sign", 3.0, 0.5),
    ]
    df = spark.createDataFrame(rows, gold.DOMAIN_CORRELATIONS.schema)
    res = validate(pplcorr.weight_sums(df), gold.DOMAIN_CORRELATIONS, {"checked": True})
    failed = sorted((e["column"], e["unexpected_count"]) for e in res.expectations if not e["success"])
    assert failed == [(gold.WEIGHT_SUM, 2), ("estimate", 1), ("estimate", 1)]


# ------------------------------------------------------------------------------------- stage end to end

MODELS = ["lm-c", "lm-a", "lm-d", "lm-b"]  # listed out of order in the pool on purpose
BENCH = ["arc", "piqa"]


def _silver_row(doc_id: str, domain: str | None, n_bytes: int) -> dict:
    return {
        "doc_id": doc_id,
        "url": None,
        "domain": domain,
        "source": "s",
        "lang": "en",
        "lang_score": 1.0,
        "text": "x" * n_bytes,
        "n_bytes": n_bytes,
        "n_bytes_raw": n_bytes,
        "n_tokens_est": math.ceil(n_bytes / 4),
        "text_hash": doc_id,
        "contamination": None,
        "clean_run_id": "clean-0",
        "cleaned_at": NOW,
    }


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """silver.documents, scores.perplexity and ref.model_scores for 4 models x 6 domains, and the truth."""
    base = tmp_path_factory.mktemp("pplcorr")
    lh = EmbeddedLakehouse(spark, str(base / "wh"))
    rng = np.random.default_rng(11)
    docs, ppl = [], []
    sizes = {"a.org": 5, "b.org": 4, "c.org": 3, "d.org": 6, "e.org": 3, "tiny.org": 1}
    for domain, n in sizes.items():
        for i in range(n):
            doc = f"{domain}-{i}"
            nb = int(rng.integers(200, 4000))
            docs.append(_silver_row(doc, domain, nb))
            for m in MODELS:
                if domain == "d.org" and i == 0 and m == "lm-b":
                    continue  # not scored by lm-b: left out of d.org for everyone
                ppl.append(_ppl_row(doc, m, float(nb * rng.uniform(0.5, 1.2)), nb))
    docs += [_silver_row(f"none-{i}", None, 3000) for i in range(3)]  # count in the token denominator only
    for i in range(3):
        ppl += [_ppl_row(f"none-{i}", m, 2000.0, 3000) for m in MODELS]
    lh.write(spark.createDataFrame(docs, silver.DOCUMENTS.schema), silver.DOCUMENTS, "overwrite")
    lh.write(spark.createDataFrame(ppl, scores.PERPLEXITY.schema), scores.PERPLEXITY, "overwrite")
    acc = {(m, b): float(np.round(rng.uniform(0.2, 0.9), 2)) for m in MODELS + ["lm-x"] for b in BENCH}
    acc[("lm-a", "arc")] = acc[("lm-d", "arc")]  # a tie in y
    acc[("lm-a", "piqa")] = acc[("lm-d", "piqa")]
    ms = [(m, b, a, "f.csv", "refs-0", NOW) for (m, b), a in acc.items()]
    lh.write(spark.createDataFrame(ms, ref.MODEL_SCORES.schema), ref.MODEL_SCORES, "overwrite")

    # select's budget keeps a quarter of silver's tokens: keep_ratio follows it
    budget = round(sum(d["n_tokens_est"] for d in docs) / 4)

    def args(select: dict | None = None, **domains) -> argparse.Namespace:
        data = {
            "profile": "test",
            "spark": {"master": "local[2]", "shuffle_partitions": 2, "progress": False, "log_level": "ERROR"},
            "storage": {"engine": "embedded", "warehouse": str(base / "wh")},
            "ingest": {"inputs": [{"name": "x", "path": str(base / "none")}]},
            "score": {"perplexity": {"pool": [{"path": f"/models/{m}"} for m in MODELS]}},
            "aggregate": {"domains": {"min_docs": 3, **domains}},
            "select": {"token_budget": budget, **(select or {})},
        }
        path = base / f"c{len(list(base.glob('c*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(data))
        return argparse.Namespace(conf=str(path), overrides=[], run_id=None, verbose=False)

    return lh, docs, ppl, acc, args


def _run(args) -> tuple[int, str]:
    out = io.StringIO()
    code = run_job(agg.STAGE, args, agg.aggregate_domains, agg.READS, out=out, preflight=agg.preflight)
    return code, out.getvalue()


def test_stage_writes_the_reference_numbers(lake):
    lh, docs, ppl, acc, args = lake
    code, out = _run(args(estimator="sign_cdf", projection="l2"))
    assert code == EXIT_OK, out
    rows = lh.read(gold.DOMAIN_CORRELATIONS).collect()

    # The same pipeline in numpy: documents every model scored, domains with >= 3 of them.
    domain_of = {d["doc_id"]: d["domain"] for d in docs}
    models = sorted(MODELS)
    scored = {}
    for r in ppl:
        scored.setdefault(r["doc_id"], set()).add(r["model_id"])
    cells = [
        (r["model_id"], domain_of[r["doc_id"]], r["nll_sum"], r["n_bytes"])
        for r in ppl
        if domain_of[r["doc_id"]] is not None and scored[r["doc_id"]] == set(models)
    ]
    n_docs = {}
    for m, d, _, _ in cells:
        n_docs[d] = n_docs.get(d, 0) + (m == models[0])
    cells = [c for c in cells if n_docs[c[1]] >= 3]
    got_models, domains, X = oracle.bpb_matrix(cells)
    assert got_models == models and domains == ["a.org", "b.org", "c.org", "d.org", "e.org"]
    y = np.array([np.mean([1 - acc[(m, b)] for b in BENCH]) for m in models])
    total = sum(d["n_tokens_est"] for d in docs)
    share = np.array([sum(d["n_tokens_est"] for d in docs if d["domain"] == dom) / total for dom in domains])
    keep_ratio = round(total / 4) / total  # select.token_budget over the pool's tokens
    tau = share / keep_ratio

    assert len(rows) == len(domains) * 10
    by = {(r["estimator"], r["projection"], r["domain"]): r for r in rows}
    for est, fn in oracle.ESTIMATORS.items():
        e = fn(X, y)
        order = np.argsort(-e, kind="stable")
        for proj, project in (("linear", oracle.linear), ("l2", oracle.l2)):
            w = project(e, tau)
            for j, dom in enumerate(domains):
                r = by[(est, proj, dom)]
                assert r["estimate"] == pytest.approx(e[j], abs=TOL), (est, dom)
                assert r["weight"] == pytest.approx(w[j], abs=TOL), (est, proj, dom)
                assert r["tau"] == pytest.approx(tau[j], abs=1e-12)
                assert r["token_share"] == pytest.approx(share[j], abs=1e-12)
                assert r["rank"] == int(np.nonzero(order == j)[0][0]) + 1
                assert r["n_docs"] == n_docs[dom] and r["n_models"] == 4
                assert r["chosen"] == (est == "sign_cdf" and proj == "l2")
                assert r["benchmark_group"] == "arc;piqa"
    versions = json.loads(rows[0]["table_versions"])
    assert versions == {
        "ref.model_scores": lh.version(ref.MODEL_SCORES),
        "scores.perplexity": lh.version(scores.PERPLEXITY),
        "silver.documents": lh.version(silver.DOCUMENTS),
    }
    assert "4 models" in out and "5 domains" in out and "top domains by weight (sign_cdf, l2" in out
    assert f"keep_ratio {keep_ratio:.4f} = select.token_budget / pool tokens" in out


def test_stage_refuses_what_it_cannot_compute(lake, capsys):
    lh, *_, args = lake
    code, _ = _run(args(min_docs=7))
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "no domain has 7 documents" in err and "the best domain has 5" in err

    total = sum(d["n_tokens_est"] for d in lake[1])
    code, _ = _run(args(select={"token_budget": round(0.95 * total)}))  # keep 95%: more than 5 domains hold
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "keep_ratio 0.9500" in err and "sum to" in err and "lower select." in err

    code, _ = _run(args(keep_ratio=0.5))  # a second knob that disagrees with the budget's 25%
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "aggregate.domains.keep_ratio 0.5 disagrees with select.token_budget" in err

    code, _ = _run(args(benchmarks=["arc", "hellaswag"]))
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "hellaswag" in err


def test_stage_needs_two_models_with_perplexities_and_scores(lake, capsys):
    lh, *_, args = lake
    a = args()
    data = yaml.safe_load(open(a.conf))
    data["score"]["perplexity"]["pool"] = [{"path": "/models/lm-a"}, {"path": "/models/lm-x"}]
    Path(a.conf).write_text(yaml.safe_dump(data))
    code, _ = _run(a)
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "at least 2 models" in err and "lm-x: no rows in scores.perplexity" in err


# ------------------------------------------------------------------------------------ load_refs scores


def _refs_args(tmp_path: Path, files: list[dict], pool=("lm-a", "lm-b"), group=None) -> argparse.Namespace:
    sections = {
        "refs": {"model_scores": files},
        "score": {"perplexity": {"pool": [{"path": f"/models/{m}"} for m in pool]}},
        "aggregate": {"domains": {"benchmarks": group}},
    }
    inputs = [{"name": "x", "path": str(tmp_path / "none")}]
    path = write_conf(tmp_path / "c.yaml", tmp_path / "wh", inputs, sections)
    return argparse.Namespace(conf=str(path), overrides=[], run_id=None, verbose=False)


def _csv(path: Path, lines: list[str]) -> dict:
    path.write_text("model_id,benchmark,accuracy\n" + "\n".join(lines) + "\n")
    return {"path": str(path)}


def test_load_refs_reads_csv_and_jsonl_scores(spark, tmp_path):
    jl = tmp_path / "more.jsonl"
    jl.write_text(
        json.dumps({"model": "lm-b", "task": "arc", "acc": 0.5})
        + "\n\n"
        + json.dumps({"model": "lm-b", "task": "piqa", "acc": "0.25"})
        + "\n"
    )
    files = [
        _csv(tmp_path / "s.csv", ["lm-a,arc,0.75", "lm-a,piqa,0.5", "lm-z,arc,1"]),
        {"path": str(jl), "model_field": "model", "benchmark_field": "task", "accuracy_field": "acc"},
    ]
    args = _refs_args(tmp_path, files)
    out = io.StringIO()
    assert run_job(load_refs.STAGE, args, load_refs.load_refs, out=out) == EXIT_OK
    lh = EmbeddedLakehouse(spark, str(tmp_path / "wh"))
    got = sorted((r["model_id"], r["benchmark"], r["accuracy"]) for r in lh.read(ref.MODEL_SCORES).collect())
    assert got == [
        ("lm-a", "arc", 0.75),
        ("lm-a", "piqa", 0.5),
        ("lm-b", "arc", 0.5),
        ("lm-b", "piqa", 0.25),
        ("lm-z", "arc", 1.0),
    ]
    assert "5 model scores" in out.getvalue() and not lh.exists(ref.BENCHMARKS)


@pytest.mark.parametrize(
    "lines, expect",
    [
        (["lm-a,arc,1.3", "lm-b,arc,0.5"], ["expect_column_values_to_be_between", "accuracy", "1.3"]),
        (["lm-a,arc,0.4", "lm-a,piqa,0.5"], ["column=model_id", "no scores at all for pool model(s) lm-b"]),
        (["lm-a,arc,0.4", "lm-a,piqa,0.5", "lm-b,arc,0.5"], ["lm-b has no score for piqa"]),
    ],
    ids=["accuracy-above-1", "pool-model-missing", "benchmark-missing"],
)
def test_load_refs_gates_model_scores(spark, tmp_path, capsys, lines, expect):
    args = _refs_args(tmp_path, [_csv(tmp_path / "s.csv", lines)])
    assert run_job(load_refs.STAGE, args, load_refs.load_refs) == EXIT_GATE
    err = capsys.readouterr().err
    assert "ref.model_scores" in err and all(x in err for x in expect), err
    assert EmbeddedLakehouse(spark, str(tmp_path / "wh")).read(ref.MODEL_SCORES).count() == 0


def test_load_refs_lists_unreadable_scores(tmp_path, capsys):
    path = tmp_path / "s.csv"
    files = [_csv(path, ["lm-a,arc,high", "lm-b,,0.5", "lm-b,arc,0.5"])]
    assert run_job(load_refs.STAGE, _refs_args(tmp_path, files), load_refs.load_refs) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "2 model score records could not be read" in err
    assert f"{path}:2: accuracy 'high' is not a number" in err and f"{path}:3: no value for benchmark" in err
