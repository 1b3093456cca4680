"""The small-LM trainer and the evaluate stage: equal tokens, seeds, paired statistics, held-out splits.

Models are tiny (1 layer, width 16, byte tokenizer, 8 steps): the tests check the mechanics, never which
strategy wins.
"""

from __future__ import annotations

import argparse
import io
import math
import random
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from pyspark.sql import functions as F

from jobs import evaluate as ev
from jobs.methods import evaluation
from jobs.methods.pick import pick
from jobs.methods.sampling import unit_hash
from jobs.runtime import EXIT_OK, EXIT_USAGE, UsageError, run_job
from jobs.tables import EmbeddedLakehouse
from schemas import gold, ref, silver
from tests.conftest import silver_row
from udfs import lm_train

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import tiny_models  # noqa: E402

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
SCIENCE = "energy light plant cell water reaction experiment measure heat metal wood".split()
OTHER = "buy cheap click offer deal free shipping sale price now limited best".split()
TINY = {"n_layer": 1, "n_embd": 16, "n_head": 2, "seq_len": 32, "batch_size": 4, "eval_tokens_per_batch": 512}


def _spec(**kw) -> lm_train.LMSpec:
    text, eos = lm_train.tokenizer_json(None)
    return lm_train.LMSpec(text, eos, **{**TINY, **kw})


# ------------------------------------------------------------------------------------------ the trainer


def test_byte_tokenizer_is_the_utf8_bytes():
    spec = _spec()
    text = "héllo, wörld <|endoftext|>"
    assert spec.eos_id == 256 and lm_train.vocab_size(spec.tokenizer_json) == 257
    assert lm_train.encode(spec, [text])[0] == [*"héllo, wörld ".encode(), 256]
    stream = lm_train.pack(spec, ["ab", "cde"], 6)
    assert stream.tolist() == [256, 97, 98, 256, 99, 100]
    with pytest.raises(lm_train.NotEnoughTokens, match="hold 7 tokens, fewer than the 8"):
        lm_train.pack(spec, ["ab", "cde"], 8)


def test_lr_schedule_warms_up_then_decays_to_the_floor():
    f = [lm_train.lr_factor(s, 20, 0.1, 0.1) for s in range(20)]
    assert f[:2] == [0.5, 1.0] and f[2] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(f[1:], f[2:], strict=False)) and f[-1] > 0.1
    assert lm_train.lr_factor(20, 20, 0.1, 0.1) == pytest.approx(0.1)


def test_training_is_seeded_and_scores_equal_a_direct_forward_pass():
    import torch

    spec = _spec()
    rng = random.Random(0)
    texts = [" ".join(rng.choice(SCIENCE) for _ in range(20)) for _ in range(12)]
    stream = lm_train.pack(spec, texts, spec.budget(1024))
    # The pipeline fixture seeds torch in a background thread (tests/fixtures/tiny_models.py).
    with tiny_models.RNG_LOCK:
        a, b, c = (lm_train.train(spec, stream, s) for s in (0, 0, 1))
    assert a.steps == 8 and a.tokens == 1024
    assert a.final_loss == b.final_loss and a.final_loss != c.final_loss
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)

    # A text shorter than the context: its NLL is the forward pass over <eos> + bytes, every byte scored.
    short = "light and heat"
    ids = torch.tensor([[spec.eos_id, *short.encode()]])
    with torch.no_grad():
        logp = torch.log_softmax(a.model(input_ids=ids).logits[0, :-1].double(), -1)
    want = -logp[torch.arange(len(short.encode())), ids[0, 1:]].sum().item()
    nll, n_bytes = lm_train.text_nll(a, spec, [short])
    assert nll[0] == pytest.approx(want, rel=1e-5) and n_bytes[0] == len(short.encode())
    # A continuation: only its bytes (the space before it included) are scored, after the prompt's.
    cont_nll, cont_bytes = lm_train.continuation_nll(a, spec, [("light and", "heat")])
    tail = -logp[torch.arange(9, 14), ids[0, 10:15]].sum().item()  # " heat" is positions 10..14
    assert cont_nll[0] == pytest.approx(tail, rel=1e-5) and cont_bytes[0] == 5
    # Longer than the context: strided windows score every byte once.
    long = " ".join(texts)
    nll, n_bytes = lm_train.text_nll(a, spec, [long])
    assert n_bytes[0] == len(long.encode()) and 0 < nll[0] / (math.log(2) * n_bytes[0]) < 9


def test_score_items_answer_bpb_and_accuracy():
    spec = _spec()
    stream = lm_train.pack(spec, ["water heat light " * 40], spec.budget(512))
    model = lm_train.train(spec, stream, 0)
    items = [
        lm_train.Item("q", "what warms?", "heat", ("heat", "zqxj"), 0),
        lm_train.Item("q", "what shines?", "light", ("zqxjw", "light"), 1),
        lm_train.Item("open", "water is", "wet"),
    ]
    rows = {(b, m): (v, n) for b, m, v, n in lm_train.score_items(model, spec, items)}
    nll, n_bytes = lm_train.continuation_nll(model, spec, [(i.prompt, i.answer) for i in items])
    assert rows["q", "answer_bpb"][0] == pytest.approx(nll[:2].sum() / (math.log(2) * n_bytes[:2].sum()))
    assert rows["open", "answer_bpb"] == (pytest.approx(lm_train.bits_per_byte(nll[2], n_bytes[2])), 1)
    assert ("open", "mc_accuracy") not in rows and rows["q", "mc_accuracy"][1] == 2


# ---------------------------------------------------------------------------------------- the statistics


def test_summary_pairs_seeds_with_random_and_gives_t_intervals():
    from scipy import stats

    runs = pd.DataFrame(
        [
            (s, seed, "b", "answer_bpb", v)
            for s, vals in (("random", [2.0, 2.2, 2.1]), ("betr", [1.8, 2.1, 1.9]))
            for seed, v in zip((0, 1, 2), vals, strict=True)
        ],
        columns=["strategy", "seed", "benchmark", "metric", "value"],
    )
    out = evaluation.summarize(runs, 0.95).set_index(["strategy", "seed"])
    diffs = np.array([-0.2, -0.1, -0.2])
    assert out.loc[("betr", 1), "diff_to_random"] == pytest.approx(-0.1)
    assert math.isnan(out.loc[("random", 0), "diff_to_random"])
    assert out.loc[("betr", 0), "diff_mean"] == pytest.approx(diffs.mean())
    half = stats.t.ppf(0.975, 2) * diffs.std(ddof=1) / math.sqrt(3)
    assert out.loc[("betr", 2), "diff_ci_low"] == pytest.approx(diffs.mean() - half)
    assert out.loc[("random", 0), "std"] == pytest.approx(np.std([2.0, 2.2, 2.1], ddof=1))
    assert (out["n_seeds"] == 3).all()


def test_equal_budget_is_the_smallest_run_in_whole_steps():
    spec = _spec()
    runs = ev.plan_runs(["betr", "random", "rds"], [5, 6, 7])
    assert list(runs.strategy) == ["random"] * 3 + ["betr"] * 3 + ["rds"] * 3
    assert list(runs.seed) == [5, 6, 7] * 3 and list(runs.run) == list(range(9))
    totals = {r: 5000 + 10 * r for r in range(9)}
    totals[4] = 1300
    assert ev.equal_budget(totals, runs, spec, None) == 1280  # 10 steps of 128 tokens
    assert ev.equal_budget(totals, runs, spec, 1000) == 896
    with pytest.raises(UsageError, match=r"strategy betr \(seed 6\) has 1,300 tokens .* fewer than .* 2,000"):
        ev.equal_budget(totals, runs, spec, 2000)


# ------------------------------------------------------------------------------------------- the stage


def _docs() -> list[dict]:
    """60 documents: odd ones science words (the betr selection), even ones shopping words."""
    rng = random.Random(1)
    out = []
    for i in range(60):
        words = SCIENCE if i % 2 else OTHER
        text = " ".join(rng.choice(words) for _ in range(rng.randint(30, 60))) + "."
        out.append(silver_row(f"d{i:03d}", text, domain=f"site{i % 4}.com", source="t"))
    return out


def _benchmarks() -> tuple[list[tuple], list[dict]]:
    rows, items = [], []
    for k, (split, q, a) in enumerate(
        [
            ("train", "What gives light?", "the sun"),
            ("dev", "What boils water?", "heat"),
            ("test", "Why does metal feel cold?", "metal conducts heat"),
            ("test", "What does a plant cell need?", "light and water"),
            ("test", "Which is a reaction?", "rust"),
        ]
    ):
        rows.append(("quiz", split, f"q{k}", f"{q}\n{a}", None, "f", "r", NOW))
        choices = [a, "cheap deal"] if k % 2 == 0 else None
        items.append(
            {
                "benchmark": "quiz",
                "split": split,
                "example_id": f"q{k}",
                "prompt": q,
                "answer": a,
                "choices": choices,
                "answer_index": 0 if choices else None,
                "source_file": "f",
                "load_run_id": "r",
                "loaded_at": NOW,
            }
        )
    return rows, items


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """silver.documents, a betr selection (the science documents), ref.benchmarks and ref.eval_items."""
    tmp = tmp_path_factory.mktemp("evaluate")
    lh = EmbeddedLakehouse(spark, str(tmp / "wh"))
    docs = _docs()
    lh.write(spark.createDataFrame(docs, silver.DOCUMENTS.schema), silver.DOCUMENTS, "overwrite", run_id="c0")
    sel = [
        {
            "run_id": "s0",
            "strategy": "betr",
            "doc_id": d["doc_id"],
            "rank": k + 1,
            "score": 1.0,
            "domain": d["domain"],
            "tokens": d["n_tokens_est"],
            "cum_tokens": 0,
            "selected_at": NOW,
            "table_versions": "{}",
        }
        for k, d in enumerate(d for d in docs if int(d["doc_id"][1:]) % 2)
    ]
    lh.write(spark.createDataFrame(sel, gold.SELECTION.schema), gold.SELECTION, "overwrite", run_id="s0")
    rows, items = _benchmarks()
    lh.write(spark.createDataFrame(rows, ref.BENCHMARKS.schema), ref.BENCHMARKS, "overwrite", run_id="r")
    lh.write(spark.createDataFrame(items, ref.EVAL_ITEMS.schema), ref.EVAL_ITEMS, "overwrite", run_id="r")

    def conf(model: dict | None = None, **sections) -> argparse.Namespace:
        data = {
            "profile": "test",
            "spark": {"master": "local[2]", "shuffle_partitions": 2, "progress": False, "log_level": "ERROR"},
            "storage": {"engine": "embedded", "warehouse": str(tmp / "wh")},
            "ingest": {"inputs": [{"name": "x", "path": str(tmp / "none")}]},
            "select": {"strategies": ["betr", "random"], "token_budget": 1500},
            "evaluate": {
                "seeds": [0, 1, 2],
                "heldout_docs": 4,
                "model": {**TINY, "train_tokens": 1024, **(model or {})},
            },
            **sections,
        }
        path = tmp / f"c{len(list(tmp.glob('c*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(data))
        return argparse.Namespace(conf=str(path), overrides=[], run_id=None, verbose=False)

    return lh, docs, conf


def _run(args) -> tuple[int, str]:
    out = io.StringIO()
    code = run_job(ev.STAGE, args, ev.evaluate, ev.READS, out=out, preflight=ev.preflight)
    return code, out.getvalue()


def test_evaluate_trains_every_arm_on_equal_tokens_and_seeds(lake):
    lh, _, conf = lake
    code, out = _run(conf())
    assert code == EXIT_OK, out
    assert "6 models (2 arms x 3 seeds)" in out and "1,024 tokens each (8 steps)" in out
    t = lh.read(gold.EVALUATION).toPandas()
    assert set(t.strategy) == {"betr", "random"} and set(t.seed) == {0, 1, 2}
    assert (t.train_tokens == 1024).all() and (t.n_seeds == 3).all()
    got = set(zip(t.benchmark, t.metric, t.n, strict=True))
    assert got == {("quiz", "answer_bpb", 3), ("quiz", "mc_accuracy", 2), (gold.HELDOUT_WEB, "bpb", 4)}
    assert len(t) == 2 * 3 * 3
    # Paired: each betr value minus random's at the same seed; the summary is the pandas one.
    r = t[t.strategy == "random"].set_index(["seed", "benchmark", "metric"]).value
    b = t[t.strategy == "betr"].set_index(["seed", "benchmark", "metric"])
    assert np.allclose(b.diff_to_random, b.value - r.loc[b.index])
    assert t[t.strategy == "random"].diff_to_random.isna().all()
    g = b.reset_index().groupby(["benchmark", "metric"])
    assert np.allclose(g.diff_mean.first(), g.diff_to_random.mean())
    # Seeds differ: the same arm's models differ across seeds.
    assert t[(t.strategy == "betr") & (t.metric == "bpb")].value.nunique() == 3


def test_random_is_redrawn_per_seed_as_select_draws_it(spark, lake):
    lh, _, _ = lake
    docs = lh.read(silver.DOCUMENTS)
    runs = ev.plan_runs(["betr"], [0, 1, 2])
    got = ev.arm_docs(lh.read(gold.SELECTION), docs, runs, 1500, None, []).toPandas()
    arms = {r: set(g.doc_id) for r, g in got.groupby("run")}
    assert arms[3] == arms[4] == arms[5] == {f"d{i:03d}" for i in range(1, 60, 2)}
    for seed in (0, 1, 2):
        cand = docs.select(
            F.lit("random").alias("strategy"),
            "doc_id",
            unit_hash(seed, "random").alias("score"),
            "domain",
            F.col("n_tokens_est").alias("n_tokens"),
        )
        want = {r["doc_id"] for r in pick(1500)(cand).collect()}
        assert arms[seed] == want
    assert arms[0] != arms[1] != arms[2]


def test_gate_refuses_rows_trained_on_other_tokens_or_seeds(spark):
    from jobs.gates import validate

    row = {f.name: None for f in gold.EVALUATION.schema.fields}
    row.update(strategy="random", benchmark="b", metric="answer_bpb", value=2.0, n=3, mean=2.0, std=0.1)
    row.update(n_seeds=3, train_tokens=1024, train_docs=5, final_train_loss=3.0, model="m", run_id="r")
    row.update(computed_at=NOW, table_versions="{}")
    rows = [{**row, "seed": s} for s in (0, 1, 2)]
    rows[2]["train_tokens"] = 2048
    res = validate(
        spark.createDataFrame(rows, gold.EVALUATION.schema), gold.EVALUATION, {"train_tokens": 1024}
    )
    failed = [(e["column"], e["unexpected_count"]) for e in res.expectations if not e["success"]]
    assert failed == [("train_tokens", 1)]
    res = validate(
        spark.createDataFrame(rows[:2], gold.EVALUATION.schema), gold.EVALUATION, {"seeds": [0, 1, 2]}
    )
    assert [e["column"] for e in res.expectations if not e["success"]] == ["seed"]  # seed 2 is missing


def test_evaluate_refuses_overlap_and_no_eval_split(spark, lake, capsys):
    lh, _, conf = lake
    assert _run(conf(refs={"eval_split": "heldout"}))[0] == EXIT_USAGE  # before any model is trained
    err = capsys.readouterr().err
    assert (
        "no example of the evaluation split 'heldout' (refs.eval_split); its splits: dev 1, test 3, train 1"
        in err
    )
    assert ev.check_splits(lh.read(ref.BENCHMARKS), ["train", "dev"], "test") == 3
    rows, _ = _benchmarks()
    folded = "what gives LIGHT?\n  the sun"  # the train example q0's text, case and whitespace aside
    rows[2] = (*rows[2][:3], folded, *rows[2][4:])
    bench = spark.createDataFrame(rows, ref.BENCHMARKS.schema)
    with pytest.raises(
        UsageError, match=r"1 evaluation example\(s\) \(split test\) are also target .* quiz/q2 ="
    ):
        ev.check_splits(bench, ["train", "dev"], "test")
