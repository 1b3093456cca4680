"""Tokens/s of the perplexity runner (``udfs.models.PerplexityRunner``) against two plain loops, same texts.

    .venv/bin/python bench/score.py [--docs 300] [--device cuda] [--no-spark] [--model PATH]

Every method scores exactly the same texts with the same strided windows (context ``--max-length``, default
the model's, stride half of it) and the same model weights, so they all score the same number of tokens
(Σ n_tokens) and must agree on the total NLL; the check is printed. Measured in this run, in turn, each
``--repeat`` times (medians reported, min–max beside them; the methods are interleaved so a noisy neighbour
hurts them alike):

  * runner, Spark: ``jobs.score_perplexity.perplexities(spec)`` over a DataFrame ``[doc_id, text]`` of the
    documents (``mapInPandas``, one model per Python worker), materialised with an aggregate; ``local[2]``
    on CPU, ``local[1]`` on CUDA (one GPU). Session start and a warm-up job (Python workers start, model
    load) are not timed.
  * runner, in-process: ``get_runner(spec, "causal_lm").predict_batch(texts)`` in the driver (extra line).
  * (a) per-document loop: the transformers perplexity guide's sliding-window loop, batch size 1:
    ``model(window, labels=...)`` with -100 on the context positions.
  * (b) fixed-size padded batches: the same windows in document order, ``--batch-size`` windows per forward,
    right-padded with an attention mask, NLL gathered at the target positions.

Tokens/s counts scored tokens (Σ n_tokens); tokenization is inside every timing. The ratios runner/(a) and
runner/(b) are printed against their CPU targets (>= 3x, >= 1.3x). On CUDA the runner's model FLOPs
utilisation is printed too: MFU = 2 · N · window tokens / s / peak, N = non-embedding parameters plus the
LM head (the matmuls a token goes through; attention's own FLOPs are left out), window tokens = tokens fed
through the model (context included, padding not); peak from ``--peak-tflops`` or a table of bf16 dense
peaks keyed by the GPU name.

The model is a random-init GPT-2 (4 layers, d 256, 4 heads, context 256, byte-level BPE with a vocabulary of
``--vocab`` trained here on the corpus) saved with safetensors in a temporary folder, or ``--model PATH``,
a local causal LM folder. The documents are the first ``--docs`` English documents (py3langid) of
``data/sample/raw/web-000.jsonl`` between ``--min-chars`` and ``--max-chars`` characters, or of a sample
corpus generated in a temporary folder when that file is missing (with the defaults, about 53k tokens,
10-90th percentile 35-275 tokens per document, so about a fifth of them span two windows or more).
About 3 minutes with the defaults on 2 CPU cores.

Threads: the in-process methods use torch's default (one per core) unless ``--threads``; the Spark runner
uses ``--workers`` Python workers with ``spark.task.cpus`` (1) torch threads each, as the runner sets it.
``OMP_WAIT_POLICY`` defaults to PASSIVE for the whole run (see ``main``); the 1-minute load average is
printed before and after the timed runs, since a busy machine shifts every number.

On CUDA the default workload (a 4M-parameter model, ~53k tokens) takes milliseconds of GPU time and mostly
measures Python and Spark overheads; for an MFU worth reading give it a real model and more text, e.g.
``--device cuda --model /models/some-1b-lm --max-length 2048 --docs 1000 --max-chars 20000``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from score_parts import (  # noqa: E402 (bench/ is the script's own folder on sys.path)
    TARGET_A,
    TARGET_B,
    Baselines,
    build_model,
    guide_windows,
    load_texts,
    matmul_params,
    model_max_length,
    peak_tflops,
    timed,
    window_tokens,
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--docs", type=int, default=300, help="documents scored by every method")
    p.add_argument("--min-chars", type=int, default=50)
    p.add_argument("--max-chars", type=int, default=1000, help="longer documents are skipped, not cut")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument(
        "--dtype", default=None, help="float32, bfloat16 or float16 (default: fp32 CPU, bf16 CUDA)"
    )
    p.add_argument(
        "--model", default=None, help="a local causal LM folder (default: a random GPT-2 built here)"
    )
    p.add_argument("--vocab", type=int, default=4096, help="BPE vocabulary of the built model")
    p.add_argument("--context", type=int, default=256, help="positions of the built model")
    p.add_argument(
        "--max-length",
        type=int,
        default=None,
        help="window length (default: the model's; set it for long-context models)",
    )
    p.add_argument(
        "--stride", type=int, default=None, help="new tokens per window (default: half the window)"
    )
    p.add_argument("--batch-size", type=int, default=16, help="windows per forward in baseline (b)")
    p.add_argument("--tokens-per-batch", type=int, default=None, help="runner budget (default: ModelSpec's)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per method; medians are reported")
    p.add_argument(
        "--threads", type=int, default=None, help="torch threads in this process (default: torch's)"
    )
    p.add_argument("--spark", action=argparse.BooleanOptionalAction, default=True, help="time the Spark path")
    p.add_argument("--workers", type=int, default=None, help="Spark local[N] (default: 2 on CPU, 1 on CUDA)")
    p.add_argument(
        "--arrow-batch", type=int, default=10_000, help="spark.sql.execution.arrow.maxRecordsPerBatch"
    )
    p.add_argument("--peak-tflops", type=float, default=None, help="GPU peak for MFU (default: by GPU name)")
    p.add_argument(
        "--rtol", type=float, default=None, help="NLL agreement (default: 1e-4 fp32, 5e-3 bf16/fp16)"
    )
    args = p.parse_args(argv)

    # Before torch and transformers are imported (here and, through the inherited environment, in Spark's
    # workers). GNU OpenMP's threads spin while they wait; with another busy process on the machine a
    # 2-thread torch process then runs 5-25x slower than a 1-thread one, which would measure the neighbour,
    # not the loops. Passive waiting keeps multi-threaded runs honest on a shared machine; export
    # OMP_WAIT_POLICY=ACTIVE to measure torch's default on a quiet one.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import numpy as np
    import pandas as pd
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from udfs.model_spec import ModelSpec
    from udfs.models import get_runner

    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        p.error("--device cuda: no GPU visible to torch")
    dtype_name = args.dtype or ("bfloat16" if cuda else "float32")
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype_name]
    rtol = args.rtol or (1e-4 if dtype == torch.float32 else 5e-3)
    if args.threads:
        torch.set_num_threads(args.threads)
    workers = args.workers or (1 if cuda else 2)

    with tempfile.TemporaryDirectory(prefix="corpuslake-bench-score-") as tmp_name:
        tmp = Path(tmp_name)
        texts, source, pool = load_texts(args.docs, args.min_chars, args.max_chars, tmp)
        if args.model:
            folder, model_note = Path(args.model).expanduser().resolve(), args.model
        else:
            folder = build_model(tmp / "lm", pool, args.vocab, args.context)
            model_note = f"random GPT-2 4x256, 4 heads, context {args.context}, BPE vocab {args.vocab}"

        device = "cuda" if cuda else "cpu"
        tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            folder, dtype=dtype, use_safetensors=True, local_files_only=True
        )
        model = model.to(device).eval()
        max_length = args.max_length or model_max_length(model, tok)
        # As the runner does: a window must keep at least one token of context.
        stride = max(1, min(args.stride or max_length // 2, max_length - 1))
        # --tokens-per-batch sets the budget on either device (both fields), so what is measured is what
        # was asked for; by default the runner's own budget for the device applies.
        spec_kw = (
            {}
            if args.tokens_per_batch is None
            else {"tokens_per_batch": args.tokens_per_batch, "cpu_tokens_per_batch": args.tokens_per_batch}
        )
        spec = ModelSpec(
            role="bench",
            id="bench-lm",
            path=str(folder),
            dtype=dtype_name,
            max_length=max_length,
            stride=stride,
            device=device,
            **spec_kw,
        )
        base = Baselines(model, tok, max_length, stride, device, args.batch_size)
        budget = spec.cpu_tokens_per_batch if device == "cpu" else spec.tokens_per_batch
        budget = min(budget, spec.tokens_per_batch)

        n_ids = [len(base._ids(t)) for t in texts]
        n_scored = sum(n - 1 for n in n_ids)
        n_window = window_tokens(n_ids, max_length, stride)
        n_windows = sum(len(guide_windows(n, max_length, stride)) for n in n_ids)
        pct = np.percentile(n_ids, [10, 50, 90, 100]).astype(int)
        print(f"perplexity scoring, {len(texts)} documents from {source}")
        print(f"  model: {model_note}; {sum(q.numel() for q in model.parameters()) / 1e6:.1f}M parameters")
        print(
            f"  device {device}, {dtype_name}, window {max_length}, stride {stride}; "
            f"tokens/doc p10/p50/p90/max {'/'.join(map(str, pct))}"
        )
        print(
            f"  {n_scored:,} scored tokens in {n_windows:,} windows ({n_window:,} window tokens); "
            f"{os.cpu_count()} CPUs, torch threads in this process {torch.get_num_threads()}"
        )

        methods: dict[str, Callable[[], tuple[float, int]]] = {}
        runner = get_runner(spec, "causal_lm")

        def in_process() -> tuple[float, int]:
            res = runner.predict_batch(pd.Series(texts))
            return float(res["nll_sum"].sum()), int(res["n_tokens"].sum())

        spark = None
        if args.spark:
            from pyspark.sql import functions as F

            from jobs.config import SparkConf
            from jobs.score_perplexity import perplexities
            from jobs.session import get_spark

            spark = get_spark(
                SparkConf(
                    master=f"local[{workers}]",
                    shuffle_partitions=workers,
                    ui=False,
                    progress=False,
                    log_level="ERROR",
                )
            )
            spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(args.arrow_batch))
            pdf = pd.DataFrame({"doc_id": [f"d{i:05d}" for i in range(len(texts))], "text": texts})
            docs = spark.createDataFrame(pdf, "doc_id string, text string").repartition(workers).cache()
            docs.count()
            scored = docs.transform(perplexities(spec))

            def in_spark() -> tuple[float, int]:
                row = scored.agg(F.sum("nll_sum").alias("nll"), F.sum("n_tokens").alias("n")).first()
                return float(row["nll"]), int(row["n"])

            methods["runner, Spark"] = in_spark
        methods["runner, in-process"] = in_process
        methods["(a) per-document loop"] = lambda: base.per_document(texts)
        methods["(b) padded batches"] = lambda: base.padded_batches(texts)

        # Warm-up: Spark's Python workers start and load the model; allocator and kernels warm up in-process.
        if "runner, Spark" in methods:
            t0 = time.perf_counter()
            methods["runner, Spark"]()
            print(f"  Spark warm-up (workers start, model load per worker): {time.perf_counter() - t0:.1f} s")
        warm = texts[: max(1, len(texts) // 20)]
        runner.predict_batch(pd.Series(warm))
        base.per_document(warm[:3])
        base.padded_batches(warm)

        load_before = os.getloadavg()[0]
        times: dict[str, list[float]] = {k: [] for k in methods}
        results: dict[str, tuple[float, int]] = {}
        for _ in range(args.repeat):
            for name, fn in methods.items():
                sec, nll, n = timed(fn, cuda)
                times[name].append(sec)
                results[name] = (nll, n)

        load_after = os.getloadavg()[0]
        med = {k: statistics.median(v) for k, v in times.items()}
        rate = {k: n_scored / med[k] for k in med}
        print(
            f"\ntokens/s, median of {args.repeat} (min-max), same {n_scored:,} tokens; load average "
            f"{load_before:.1f} before, {load_after:.1f} after on {os.cpu_count()} CPUs; "
            f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}:"
        )
        notes = {
            "runner, Spark": f"local[{workers}], {workers} Python workers, torch threads = spark.task.cpus",
            "runner, in-process": f"predict_batch in the driver, {budget} tokens per batch on {device}",
            "(a) per-document loop": "batch size 1, model(..., labels=...)",
            "(b) padded batches": f"batch size {args.batch_size} windows, document order",
        }
        for name in methods:
            lo, hi = n_scored / max(times[name]), n_scored / min(times[name])
            print(
                f"  {name:<24} {med[name]:7.2f} s  {rate[name]:9,.0f} tokens/s  ({lo:,.0f}-{hi:,.0f})"
                f"  {notes[name]}"
            )

        ok = True
        ref_nll = results["(a) per-document loop"][0]
        print(f"\nagreement (relative tolerance {rtol:g}), total NLL {ref_nll:,.3f} nats in (a):")
        for name, (nll, n) in results.items():
            rel = abs(nll - ref_nll) / max(abs(ref_nll), 1e-12)
            good = rel <= rtol and n == n_scored
            ok &= good
            print(f"  {name:<24} NLL rel diff {rel:.1e}  tokens {n:,}  {'ok' if good else 'MISMATCH'}")

        lead = "runner, Spark" if "runner, Spark" in methods else "runner, in-process"
        print(f"\nratios of median tokens/s ({lead}); in brackets the ratio within each round:")
        for label, other, target in (
            ("(a)", "(a) per-document loop", TARGET_A),
            ("(b)", "(b) padded batches", TARGET_B),
        ):
            r = rate[lead] / rate[other]
            met = "met" if r >= target else "NOT met"
            rounds = ", ".join(f"{o / x:.2f}" for x, o in zip(times[lead], times[other], strict=True))
            print(f"  runner / {label} = {r:5.2f}  [{rounds}]   (target >= {target} on CPU: {met})")
        if lead != "runner, in-process":
            r_a = rate["runner, in-process"] / rate["(a) per-document loop"]
            r_b = rate["runner, in-process"] / rate["(b) padded batches"]
            print(f"  in-process runner / (a) = {r_a:5.2f}, / (b) = {r_b:5.2f}")

        if cuda:
            name = torch.cuda.get_device_name()
            peak = args.peak_tflops or peak_tflops(name)
            n_params = matmul_params(model)
            if peak is None:
                print(f"\nMFU: unknown peak for {name!r}; pass --peak-tflops (bf16 dense)")
            else:
                print(
                    f"\nMFU vs {peak:g} TFLOP/s ({name}): 2·N·tokens / s / peak, N = {n_params / 1e6:.1f}M "
                    "non-embedding parameters + LM head (attention FLOPs left out)"
                )
                if dtype == torch.float32:
                    print("  (fp32 run: against the bf16 peak all the same)")
                for k in ("runner, Spark", "runner, in-process"):
                    if k in med:
                        mfu = 2 * n_params * n_window / med[k] / (peak * 1e12)
                        mfu_scored = 2 * n_params * n_scored / med[k] / (peak * 1e12)
                        print(
                            f"  {k:<24} {100 * mfu:6.2f}% over window tokens (context included, padding "
                            f"not); {100 * mfu_scored:6.2f}% over scored tokens"
                        )
        if spark is not None:
            spark.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
