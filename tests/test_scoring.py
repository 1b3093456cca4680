"""Model scoring stages on tiny random models: values against direct transformers/numpy computations."""

from __future__ import annotations

import argparse
import io
import math
import shutil
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import yaml
from pyspark.sql import functions as F

from jobs import score_perplexity, score_prrc, score_similarity
from jobs.runtime import EXIT_OK, EXIT_USAGE, run_job
from jobs.tables import EmbeddedLakehouse
from schemas import ref, scores, silver
from udfs.model_spec import ModelSpec

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import tiny_models  # noqa: E402

CONTEXT = 64  # the tiny models' window: most sample documents are longer, so windows are exercised


@pytest.fixture(scope="module")
def corpus(ingested):
    """30 English bronze documents from 6 domains plus one very long one, as silver rows."""
    bronze_lh = ingested[0]
    from schemas import bronze

    rows = (
        bronze_lh.read(bronze.DOCUMENTS)
        .filter(F.length("text").between(200, 6000) & F.col("domain").isNotNull())
        .orderBy("doc_id")
        .select("doc_id", "url", "domain", "source", "text")
        .limit(30)
        .collect()
    )
    docs = [r.asDict() for r in rows]
    docs.append({**docs[0], "doc_id": "zz-long", "text": "\n\n".join(d["text"] for d in docs[:6])})
    return docs


@pytest.fixture(scope="module")
def models(tmp_path_factory, corpus):
    base = tmp_path_factory.mktemp("models")
    texts = [d["text"] for d in corpus]
    tok = tiny_models.bpe_tokenizer(texts, max_length=CONTEXT)
    return {
        "lm-a": tiny_models.causal_lm(base / "lm-a", texts, CONTEXT, seed=1, tokenizer=tok),
        "lm-b": tiny_models.causal_lm(base / "lm-b", texts, CONTEXT, seed=2, tokenizer=tok),
        **{
            f"rater-{d}": tiny_models.classifier(base / f"rater-{d}", 6, CONTEXT, seed=i)
            for i, d in enumerate(scores.PRRC_DIMENSIONS)
        },
        "regressor": tiny_models.classifier(base / "regressor", 1, CONTEXT, seed=9),
        "embedder": tiny_models.embedder(base / "embedder", CONTEXT, seed=3),
    }


def _write_silver(spark, lh, docs):
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = [
        {
            **d,
            "lang": "en",
            "lang_score": 1.0,
            "n_bytes": len(d["text"].encode()),
            "n_bytes_raw": len(d["text"].encode()),
            "n_tokens_est": math.ceil(len(d["text"].encode()) / 4),
            "text_hash": d["doc_id"],
            "contamination": None,
            "clean_run_id": "clean-0",
            "cleaned_at": now,
        }
        for d in docs
    ]
    df = spark.createDataFrame(rows, silver.DOCUMENTS.schema)
    lh.write(df, silver.DOCUMENTS, "overwrite", run_id="clean-0")


def _write_benchmarks(spark, lh, docs):
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    rows = []
    for b, bench in enumerate(("alpha", "beta", "gamma")):
        for k in range(4):
            text = docs[(b * 4 + k) % len(docs)]["text"][:300] + f" question {bench} {k}"
            rows.append((bench, "test", f"{bench}-{k}", text, None, "f.jsonl", "refs-0", now))
    lh.write(spark.createDataFrame(rows, ref.BENCHMARKS.schema), ref.BENCHMARKS, "overwrite", run_id="refs-0")


@pytest.fixture
def lake(spark, tmp_path, corpus):
    """A warehouse with silver.documents and ref.benchmarks, and a conf writer for it."""
    lh = EmbeddedLakehouse(spark, str(tmp_path / "wh"))
    _write_silver(spark, lh, corpus)
    _write_benchmarks(spark, lh, corpus)

    def conf(score: dict, **extra) -> argparse.Namespace:
        data = {
            "profile": "test",
            "spark": {"master": "local[2]", "shuffle_partitions": 2, "progress": False, "log_level": "ERROR"},
            "storage": {"engine": "embedded", "warehouse": str(tmp_path / "wh")},
            "ingest": {"inputs": [{"name": "x", "path": str(tmp_path / "none")}]},
            "score": score,
            **extra,
        }
        path = tmp_path / f"c{len(list(tmp_path.glob('c*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(data))
        return argparse.Namespace(conf=str(path), overrides=[], run_id=None, verbose=False)

    return lh, conf


def _run(module, args, body=None):
    out = io.StringIO()
    stage = {
        score_perplexity: "score_perplexity",
        score_prrc: "score_prrc",
        score_similarity: "score_similarity",
    }
    body = body or getattr(module, module.STAGE)
    code = run_job(module.STAGE, args, body, module.READS, out=out, preflight=module.preflight)
    assert stage[module]
    return code, out.getvalue()


def _model(path, **kw) -> dict:
    return {"path": str(path), "tokens_per_batch": 512, **kw}


# ------------------------------------------------------------------------------------------- perplexity


def _reference_nll(path: Path, text: str, stride: int) -> tuple[float, int]:
    """The transformers perplexity guide's sliding-window loop, one document at a time, no batching."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    ids = torch.tensor([[tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]])
    seq_len = ids.size(1)
    nll, prev_end = 0.0, 0
    with torch.no_grad():
        for begin in range(0, seq_len, stride):
            end = min(begin + CONTEXT, seq_len)
            trg_len = end - max(prev_end, begin + 1) if begin == 0 else end - prev_end
            input_ids = ids[:, begin:end]
            target = input_ids.clone()
            target[:, :-trg_len] = -100
            loss = model(input_ids, labels=target).loss  # mean over the trg_len scored tokens
            nll += float(loss) * trg_len
            prev_end = end
            if end == seq_len:
                break
    return nll, seq_len - 1


def test_bpb_equals_a_plain_per_document_loop(lake, models, corpus):
    lh, conf = lake
    pool = [_model(models["lm-a"]), _model(models["lm-b"])]
    # lm-a is the perplexity filter's reference: it scores every document, lm-b only the sample.
    args = conf(
        {"chunk_docs": 1000, "perplexity": {"pool": pool, "sample": {"per_domain": 2, "seed": 0}}},
        filter={"perplexity": {"enabled": True, "model": "lm-a"}},
    )
    code, out = _run(score_perplexity, args)
    assert code == EXIT_OK, out
    got = {(r["doc_id"], r["model_id"]): r for r in lh.read(scores.PERPLEXITY).collect()}
    from jobs.scoring import stratified_sample

    sampled = {r["doc_id"] for r in lh.read(silver.DOCUMENTS).transform(stratified_sample(2, 0)).collect()}
    assert {d for d, m in got if m == "lm-a"} == {d["doc_id"] for d in corpus}
    assert {d for d, m in got if m == "lm-b"} == sampled and len(sampled) < len(corpus)
    long = got[("zz-long", "lm-a")]
    assert long["n_tokens"] > 5 * CONTEXT  # the long document needed many windows
    for m in ("lm-a", "lm-b"):
        mine = [d for d in corpus if (d["doc_id"], m) in got]
        for d in (mine[0], mine[len(mine) // 2], mine[-1]):
            nll, n_tokens = _reference_nll(models[m], d["text"], CONTEXT // 2)
            row = got[(d["doc_id"], m)]
            n_bytes = len(d["text"].encode("utf-8"))
            assert row["n_tokens"] == n_tokens and row["n_bytes"] == n_bytes
            assert row["bpb"] == pytest.approx(nll / (math.log(2) * n_bytes), abs=1e-4)
            assert row["nll_sum"] == pytest.approx(nll, rel=1e-5)
    assert "lm-a@main" in out and "tokens/s" in out


def test_stratified_sample_is_stable_and_capped(spark, lake, corpus):
    from jobs.scoring import stratified_sample

    lh, _ = lake
    docs = lh.read(silver.DOCUMENTS)
    a = docs.transform(stratified_sample(1, seed=5))
    counts = {r["domain"]: r["count"] for r in a.groupBy("domain").count().collect()}
    per_domain = {}
    for d in corpus:
        per_domain[d["domain"]] = per_domain.get(d["domain"], 0) + 1
    assert counts == {k: 1 for k in per_domain}
    assert sum(v > 1 for v in per_domain.values()) >= 3  # so the seed has choices to make
    ids = sorted(r["doc_id"] for r in a.collect())
    assert ids == sorted(r["doc_id"] for r in docs.transform(stratified_sample(1, seed=5)).collect())
    assert ids != sorted(r["doc_id"] for r in docs.transform(stratified_sample(1, seed=6)).collect())


# ------------------------------------------------------------------------------------------- PRRC


def _direct_probs(path: Path, text: str):
    """Class probabilities of one text, chunked like chunk_mean: [CLS] chunk [SEP], weighted by tokens."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    ids = tok(text, add_special_tokens=False)["input_ids"]
    room = CONTEXT - 2
    acc, total = 0, 0
    with torch.no_grad():
        for s in range(0, len(ids), room):
            chunk = ids[s : s + room]
            x = torch.tensor([[tok.cls_token_id, *chunk, tok.sep_token_id]])
            logits = model(x).logits[0]
            p = torch.softmax(logits, -1).numpy() if logits.numel() > 1 else logits.numpy()
            acc = acc + len(chunk) * p
            total += len(chunk)
    return acc / total


def test_prrc_ratings_equal_direct_model_outputs(lake, models, corpus):
    lh, conf = lake
    prrc = {d: _model(models[f"rater-{d}"]) for d in scores.PRRC_DIMENSIONS}
    code, out = _run(score_prrc, conf({"prrc": prrc}))
    assert code == EXIT_OK, out
    got = {r["doc_id"]: r for r in lh.read(scores.PRRC).collect()}
    assert len(got) == len(corpus)
    for d in (corpus[0], corpus[-1]):  # a short document and the long one (chunk_mean)
        for dim in scores.PRRC_DIMENSIONS:
            p = _direct_probs(models[f"rater-{dim}"], d["text"])
            assert got[d["doc_id"]][dim] == pytest.approx(float(np.arange(6) @ p), abs=1e-5)
            assert got[d["doc_id"]][f"{dim}_label"] == int(np.argmax(p))
    assert got["zz-long"]["raters"].startswith(
        f"professionalism={Path(models['rater-professionalism']).name}@main"
    )


def test_regressor_rater_and_head_tail_policy(models, corpus):
    import pandas as pd
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from udfs.models import get_runner

    spec = ModelSpec(role="r", id="reg", path=str(models["regressor"]), long_text="head_tail")
    res = get_runner(spec, "classifier").predict_batch(pd.Series([corpus[-1]["text"]]))
    tok = AutoTokenizer.from_pretrained(models["regressor"])
    model = AutoModelForSequenceClassification.from_pretrained(models["regressor"]).eval()
    ids = tok(corpus[-1]["text"], add_special_tokens=False)["input_ids"]
    room = CONTEXT - 2
    head = room // 4
    kept = ids[:head] + ids[len(ids) - (room - head) :]
    with torch.no_grad():
        want = float(model(torch.tensor([[tok.cls_token_id, *kept, tok.sep_token_id]])).logits[0, 0])
    assert res["expected"][0] == pytest.approx(want, abs=1e-5)
    assert res["n_tokens"][0] == len(ids)


# ------------------------------------------------------------------------------------------- similarity


def _rds_reference(path: Path, text: str) -> np.ndarray:
    """RDS+ pooling written out in numpy: e = Σ_t (t / Σ_s s)·h_t over the last layer, L2-normalized."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path).eval()
    ids = tok(text)["input_ids"]  # the tokenizer's own special tokens (none for this BPE), unpadded
    assert len(ids) <= CONTEXT
    with torch.no_grad():
        h = model(torch.tensor([ids]), output_hidden_states=True).hidden_states[-1][0]
    h = h.numpy().astype(np.float64)
    t = np.arange(1, len(h) + 1, dtype=np.float64)
    e = (t[:, None] * h).sum(0) / t.sum()
    return e / np.linalg.norm(e)


def test_rds_pooling_equals_numpy(models, corpus):
    import pandas as pd

    from udfs.models import get_runner

    texts = [corpus[1]["text"][:100], corpus[2]["text"][:50], "a b"]
    runner = get_runner(ModelSpec(role="r", id="rds", path=str(models["lm-a"])), "rds_encoder")
    got = runner.predict_batch(pd.Series(texts))  # one padded batch: padding must not change pooling
    for text, emb in zip(texts, got["embedding"], strict=True):
        np.testing.assert_allclose(emb, _rds_reference(models["lm-a"], text), atol=1e-5)


def _brute_force(doc_ids, emb, targets, target_bench, top_k=None):
    """Ranks by sorting every document under every target (cosine desc, doc_id asc)."""
    sims = emb @ targets.T
    out = {}
    for j, b in enumerate(target_bench):
        order = sorted(range(len(doc_ids)), key=lambda i: (-sims[i, j], doc_ids[i]))
        for rank, i in enumerate(order, 1):
            key = (doc_ids[i], b)
            r = rank if top_k is None or rank <= top_k else None
            best, cos = out.get(key, (None, -np.inf))
            if r is not None and (best is None or r < best):
                best = r
            out[key] = (best, max(cos, sims[i, j]))
    return out


def test_similarity_scan_on_pandas():
    import pandas as pd

    from udfs.similarity import SimilarityScan

    targets = np.array([[1, 0], [0, 1], [1, 0]], dtype=np.float32)  # benchmarks a, a, b
    scan = SimilarityScan(targets, ["a", "a", "b"], top_k=1, block=2)
    emb = lambda *xs: [np.array(x) for x in xs]  # noqa: E731
    batches = [
        pd.DataFrame({"doc_id": ["d1", "d2"], "embedding": emb([1, 0], [0, 1])}),
        pd.DataFrame({"doc_id": [], "embedding": []}),  # skipped
        pd.DataFrame({"doc_id": ["d3"], "embedding": emb([0.75, 0.5])}),
    ]
    frames = list(scan(batches))
    assert all(list(f.columns) == ["kind", "doc_id", "benchmark", "target", "cosine"] for f in frames)
    assert [list(f.itertuples(index=False, name=None)) for f in frames] == [
        [
            ("max", "d1", "a", -1, 1.0),
            ("max", "d1", "b", -1, 1.0),
            ("max", "d2", "a", -1, 1.0),
            ("max", "d2", "b", -1, 0.0),
        ],
        [("max", "d3", "a", -1, 0.75), ("max", "d3", "b", -1, 0.75)],
        # After the last batch, each target's top 1: d1 for both [1, 0] targets, d2 for [0, 1].
        [("cand", "d1", "a", 0, 1.0), ("cand", "d2", "a", 1, 1.0), ("cand", "d1", "b", 2, 1.0)],
    ]


@pytest.mark.parametrize("top_k,block", [(None, 1024), (3, 2)])
def test_similarity_ranks_equal_brute_force(spark, top_k, block):
    from jobs.score_similarity import similarity

    rng = np.random.default_rng(0)
    n, d = 57, 8
    emb = rng.normal(size=(n, d)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    targets = rng.normal(size=(7, d)).astype(np.float32)
    targets /= np.linalg.norm(targets, axis=1, keepdims=True)
    bench = ["b", "a", "b", "c", "a", "b", "c"]  # not grouped: the function groups them
    ids = [f"doc-{i:03d}" for i in range(n)]
    df = spark.createDataFrame(
        [(i, e.tolist()) for i, e in zip(ids, emb, strict=True)], "doc_id string, embedding array<float>"
    ).repartition(3)
    got = {
        (r["doc_id"], r["benchmark"]): (r["best_rank"], r["max_cosine"])
        for r in similarity(df, targets, bench, top_k, block).collect()
    }
    want = _brute_force(ids, emb.astype(np.float64), targets.astype(np.float64), bench, top_k)
    assert set(got) == set(want) and len(got) == n * 3
    for k, (rank, cos) in want.items():
        assert got[k][0] == rank, k
        assert got[k][1] == pytest.approx(cos, abs=1e-5)


def test_similarity_stage_betr_and_rds(lake, models, corpus):
    import pandas as pd

    from udfs.models import get_runner

    lh, conf = lake
    args = conf(
        {
            "similarity": {"embedder": _model(models["embedder"]), "top_k": None},
            "rds": {"encoder": _model(models["lm-a"], id="rds-lm")},
        }
    )
    code, out = _run(score_similarity, args)
    assert code == EXIT_OK, out
    emb = lh.read(scores.EMBEDDINGS).filter("method = 'betr'").orderBy("doc_id").collect()
    assert [r["doc_id"] for r in emb] == sorted(d["doc_id"] for d in corpus)
    ids = [r["doc_id"] for r in emb]
    doc_emb = np.array([r["embedding"] for r in emb], dtype=np.float64)
    # Document embeddings equal the runner's own output on the same texts.
    runner = get_runner(
        ModelSpec(role="e", id="embedder", path=str(models["embedder"]), tokens_per_batch=512), "embedder"
    )
    text = {d["doc_id"]: d["text"] for d in corpus}
    np.testing.assert_allclose(
        doc_emb, np.stack(runner.predict_batch(pd.Series([text[i] for i in ids]))["embedding"]), atol=1e-5
    )
    bench = lh.read(ref.BENCHMARKS).orderBy("benchmark", "split", "example_id").collect()
    tgt = np.stack(runner.predict_batch(pd.Series([b["text"] for b in bench]))["embedding"]).astype(
        np.float64
    )
    want = _brute_force(ids, doc_emb, tgt, [b["benchmark"] for b in bench])
    sim = lh.read(scores.SIMILARITY)
    got = {
        (r["doc_id"], r["benchmark"]): (r["best_rank"], r["max_cosine"])
        for r in sim.filter("method = 'betr'").collect()
    }
    assert set(got) == set(want)
    for k, (rank, cos) in want.items():
        assert got[k][0] == rank and got[k][1] == pytest.approx(cos, abs=1e-5), k
    rds = sim.filter("method = 'rds'")
    assert rds.count() == len(corpus) * 3
    assert {r["model_id"] for r in rds.collect()} == {"rds-lm"}
    assert {r["n_targets"] for r in sim.collect()} == {4} and {r["pool_docs"] for r in sim.collect()} == {
        len(corpus)
    }
    # A rerun embeds nothing new and recomputes the same similarity table.
    code, out2 = _run(score_similarity, args)
    assert code == EXIT_OK and "already scored" in out2
    assert lh.read(scores.EMBEDDINGS).count() == 2 * len(corpus)
    again = {
        (r["doc_id"], r["benchmark"], r["method"]): (r["best_rank"], r["max_cosine"])
        for r in lh.read(scores.SIMILARITY).collect()
    }
    assert len(again) == 2 * 3 * len(corpus)
    assert all(again[(d, b, "betr")] == v for (d, b), v in got.items())


# ------------------------------------------------------------------------------------------- robustness


def test_resume_after_kill_scores_each_document_once(lake, models, corpus, python):
    """SIGKILL at the second chunk commit; the rerun scores only the rest: one row per (doc, model)."""
    import os
    import subprocess

    lh, conf = lake
    pool = {"pool": [_model(models["lm-a"])]}
    args = conf({"chunk_docs": 8, "perplexity": pool})
    env = {**os.environ, "CORPUSLAKE_FAULT": f"before_commit:{scores.PERPLEXITY.name}:2"}
    proc = subprocess.run(
        [python, "-m", "jobs.score_perplexity", "--conf", args.conf, "--run-id", "killed"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]
    first = lh.read(scores.PERPLEXITY).collect()
    assert 0 < len(first) < len(corpus)  # the first chunk landed, the rest did not
    # The rerun asks for CUDA: without a GPU it falls back to CPU and must score identically.
    rerun = conf({"chunk_docs": 8, "perplexity": {"pool": [_model(models["lm-a"], device="cuda")]}})
    code, out = _run(score_perplexity, rerun)
    assert code == EXIT_OK, out
    rows = lh.read(scores.PERPLEXITY).collect()
    assert sorted(r["doc_id"] for r in rows) == sorted(d["doc_id"] for d in corpus)
    assert {r["doc_id"]: r["run_id"] for r in rows if r["run_id"] == "killed"} == {
        r["doc_id"]: "killed" for r in first
    }
    assert f"{len(first):,} already scored" in out


def test_runner_falls_back_to_cpu_with_a_log_line(models, caplog):
    import pandas as pd

    from udfs.models import RUNNERS

    texts = pd.Series(["the cat sat on the mat", "a longer sentence about nothing in particular"])
    with caplog.at_level("WARNING", logger="corpuslake.models"):
        gpu = RUNNERS["causal_lm"](
            ModelSpec(role="r", id="a", path=str(models["lm-a"]), device="cuda")
        ).load()
    assert gpu.device == "cpu"
    assert "no GPU visible" in caplog.text and "scoring on CPU" in caplog.text
    cpu = RUNNERS["causal_lm"](ModelSpec(role="r", id="a", path=str(models["lm-a"]), device="cpu")).load()
    pd.testing.assert_frame_equal(gpu.predict_batch(texts), cpu.predict_batch(texts))


def test_bad_models_fail_before_any_spark_work(lake, models, tmp_path, capsys):
    lh, conf = lake
    (tmp_path / "pickled").mkdir()
    (tmp_path / "pickled" / "config.json").write_text('{"model_type": "gpt2"}')
    (tmp_path / "pickled" / "pytorch_model.bin").write_bytes(b"x")
    (tmp_path / "no-tokenizer").mkdir()
    for name in ("config.json", "model.safetensors"):
        shutil.copy(Path(models["embedder"]) / name, tmp_path / "no-tokenizer" / name)
    cases = [
        (
            score_perplexity,
            {"perplexity": {"pool": [{"path": str(tmp_path / "nope")}]}},
            "score.perplexity.pool[0] (nope): model folder",
        ),
        (
            score_perplexity,
            {"perplexity": {"pool": [_model(models["embedder"])]}},
            "score.perplexity.pool[0] (embedder): ",
            "expected a causal LM",
        ),
        (
            score_perplexity,
            {"perplexity": {"pool": [{"path": str(tmp_path / "pickled")}]}},
            "no *.safetensors weights",
        ),
        (
            score_prrc,
            {"prrc": {d: _model(models["lm-a"]) for d in scores.PRRC_DIMENSIONS}},
            "score.prrc.professionalism (lm-a):",
            "expected a sequence classifier",
        ),
        (
            score_prrc,
            {"prrc": {"professionalism": _model(models["rater-professionalism"])}},
            "score.prrc: no rater for readability, reasoning, cleanliness",
        ),
        (
            score_similarity,
            {"similarity": {"embedder": _model(tmp_path / "no-tokenizer", id="x")}, "rds": {}},
            "score.similarity.embedder (x):",
            "tokenizer files missing",
        ),
        (score_perplexity, {"perplexity": {"pool": []}}, "score.perplexity.pool: no models configured"),
    ]
    before = sorted(p.name for p in (tmp_path / "wh").iterdir())
    for module, score, *expected in cases:
        code, out = _run(module, conf(score))
        err = capsys.readouterr().err
        assert code == EXIT_USAGE, (score, err)
        for e in expected:
            assert e in err, err
        assert "Traceback" not in err
    assert sorted(p.name for p in (tmp_path / "wh").iterdir()) == before  # no audit tables, nothing
