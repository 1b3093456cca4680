"""The scoring runners against plain loops and against the machine's own matmul peak, same texts.

    .venv/bin/python bench/score.py [--docs 300] [--device cuda] [--runners perplexity,prrc] [--no-spark]

Two workloads, each scored by every method over exactly the same texts and weights:

  * perplexity: ``udfs.models.PerplexityRunner`` on a random-init GPT-2 of realistic width (6 layers x 512,
    vocabulary 8192 trained here on the corpus: 23M parameters), or ``--model PATH``, with strided windows
    (context ``--max-length``, default the model's, stride half of it); all methods must agree on the total
    NLL.
  * prrc: ``udfs.models.ClassifierRunner`` on a random-init 6-class BERT rater of BERT-base width (4 layers
    x 768, MiniLM's 30522-token WordPiece: 28M matmul parameters), one of the four PRRC raters (the stage
    runs four in the same task, each the same cost); all methods must agree on Σ expected rating.

Methods, each ``--repeat`` times, interleaved so a noisy neighbour hurts them alike (medians reported):

  * runner, Spark: the stage's transform (``jobs.score_perplexity.perplexities`` / ``jobs.scoring.
    model_transform`` as ``score_prrc`` uses it) over a DataFrame ``[doc_id, text]`` (``mapInPandas``, one
    model per Python worker, ``local[2]`` on CPU, ``local[1]`` on CUDA), materialised with an aggregate;
    session start and a warm-up job (workers start, model load) are not timed.
  * runner, in-process: ``get_runner(spec, kind).predict_batch(texts)`` in this process.
  * (a) per-document loop: batch size 1 (for perplexity the transformers guide's sliding-window loop,
    ``model(window, labels=...)``).
  * (b) fixed-size padded batches: ``--batch-size`` windows / texts per forward in document order.

Hardware limit: the dense matmul rate in the model's dtype (``score_parts.MatmulPeak``: [2048, 2048]² on
CPU, [8192, 8192]² on CUDA) is measured in this process right before and right after every timed call, and
each call's share of peak is its model FLOP/s over the mean of those two (median over rounds). Model FLOPs
= 2 · (N_body · input tokens + N_head · scored tokens): N_body the non-embedding parameters a position
goes through, input tokens the tokens fed to the model (window context included, padding not), N_head the
LM head, needed only at scored positions (attention's own FLOPs are left out). On CPU the same share is
also given by process CPU time (FLOPs per CPU-second of the in-process call over the matmul's), which a
loaded machine moves far less than the wall clock; the 1-minute load average is printed with each number.

Threads: the in-process methods and the peak use torch's default (one per core) unless ``--threads``; the
Spark runner uses ``--workers`` Python workers with ``spark.task.cpus`` (1) torch threads each, measured
against the same in-process peak. ``OMP_WAIT_POLICY`` defaults to PASSIVE (see ``main``). On CUDA the
run is in bf16 with SDPA attention; give it a real model and more text for an MFU worth reading, e.g.
``--device cuda --model /models/some-1b-lm --max-length 2048 --docs 1000 --max-chars 20000``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from score_parts import (  # noqa: E402 (bench/ is the script's own folder on sys.path)
    TARGET_A,
    TARGET_B,
    Baselines,
    ClassifierBaselines,
    MatmulPeak,
    build_classifier,
    build_model,
    flop_params,
    guide_windows,
    load_texts,
    model_max_length,
    peak_tflops,
    timed,
    window_tokens,
)

TARGET_PEAK = 0.5  # perplexity runner's model FLOP/s / matmul peak, CPU and CUDA


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runners", default="perplexity,prrc", help="comma list: perplexity, prrc")
    p.add_argument("--docs", type=int, default=300, help="documents scored by every method")
    p.add_argument("--min-chars", type=int, default=50)
    p.add_argument("--max-chars", type=int, default=1000, help="longer documents are skipped, not cut")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument(
        "--dtype", default=None, help="float32, bfloat16 or float16 (default: fp32 CPU, bf16 CUDA)"
    )
    p.add_argument("--model", default=None, help="a local causal LM folder (default: a GPT-2 built here)")
    p.add_argument("--rater", default=None, help="a local 6-class classifier folder (default: built here)")
    p.add_argument("--vocab", type=int, default=8192, help="BPE vocabulary of the built LM")
    p.add_argument("--context", type=int, default=256, help="positions of the built LM")
    p.add_argument("--width", type=int, default=512, help="hidden size of the built LM")
    p.add_argument("--layers", type=int, default=6, help="layers of the built LM")
    p.add_argument("--rater-width", type=int, default=768, help="hidden size of the built rater")
    p.add_argument("--rater-layers", type=int, default=4, help="layers of the built rater")
    p.add_argument("--max-length", type=int, default=None, help="LM window (default: the model's)")
    p.add_argument("--stride", type=int, default=None, help="new tokens per window (default: half)")
    p.add_argument("--batch-size", type=int, default=16, help="windows / texts per forward in (b)")
    p.add_argument("--tokens-per-batch", type=int, default=None, help="runner budget (default: ModelSpec's)")
    p.add_argument("--repeat", type=int, default=3, help="timed runs per method; medians are reported")
    p.add_argument("--threads", type=int, default=None, help="torch threads in this process")
    p.add_argument("--spark", action=argparse.BooleanOptionalAction, default=True, help="time the Spark path")
    p.add_argument("--workers", type=int, default=None, help="Spark local[N] (default: 2 on CPU, 1 on CUDA)")
    p.add_argument(
        "--arrow-batch", type=int, default=10_000, help="spark.sql.execution.arrow.maxRecordsPerBatch"
    )
    p.add_argument(
        "--peak-tflops", type=float, default=None, help="a GPU's datasheet bf16 peak, printed beside"
    )
    p.add_argument("--rtol", type=float, default=None, help="agreement (default: 1e-4 fp32, 5e-3 bf16/fp16)")
    args = p.parse_args(argv)
    runners = [r.strip() for r in args.runners.split(",") if r.strip()]
    if not runners or set(runners) - {"perplexity", "prrc"}:
        p.error(f"--runners: expected perplexity and/or prrc, got {args.runners!r}")

    # Before torch and transformers are imported (here and, through the inherited environment, in Spark's
    # workers). GNU OpenMP's threads spin while they wait; with another busy process on the machine a
    # 2-thread torch process then runs 5-25x slower than a 1-thread one, which would measure the neighbour,
    # not the loops. Passive waiting keeps multi-threaded runs honest on a shared machine; export
    # OMP_WAIT_POLICY=ACTIVE to measure torch's default on a quiet one.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    import torch

    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        p.error("--device cuda: no GPU visible to torch")
    dtype_name = args.dtype or ("bfloat16" if cuda else "float32")
    dtype = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype_name]
    if args.threads:
        torch.set_num_threads(args.threads)
    bench = Bench(args, cuda, dtype, dtype_name)
    ok = True
    with tempfile.TemporaryDirectory(prefix="corpuslake-bench-score-") as tmp_name:
        tmp = Path(tmp_name)
        bench.texts, source, bench.pool = load_texts(args.docs, args.min_chars, args.max_chars, tmp)
        print(
            f"{len(bench.texts)} documents from {source}; {os.cpu_count()} CPUs, torch threads "
            f"{torch.get_num_threads()}, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}"
        )
        bench.peak = MatmulPeak(dtype, bench.device)
        wall, cpu = bench.peak.measure()
        print(
            f"matmul peak, {dtype_name} [{bench.peak.n}]² on {bench.device}: {wall / 1e9:,.0f} GFLOP/s wall, "
            f"{cpu / 1e9:,.0f} per CPU-second; load {os.getloadavg()[0]:.1f}"
        )
        if "perplexity" in runners:
            ok &= bench.perplexity(tmp)
        if "prrc" in runners:
            ok &= bench.prrc(tmp)
        if bench.spark is not None:
            bench.spark.stop()
    return 0 if ok else 1


class Bench:
    """One workload at a time: build the model, the methods and the FLOP count, then time and report."""

    def __init__(self, args, cuda: bool, dtype, dtype_name: str):
        self.args, self.cuda, self.dtype, self.dtype_name = args, cuda, dtype, dtype_name
        self.device = "cuda" if cuda else "cpu"
        self.workers = args.workers or (1 if cuda else 2)
        self.rtol = args.rtol or (1e-4 if dtype_name == "float32" else 5e-3)
        self.spark = None
        self.texts: list[str] = []
        self.pool: list[str] = []
        self.peak: MatmulPeak | None = None

    def _spec(self, folder: Path, model_id: str, **kw):
        from udfs.model_spec import ModelSpec

        # --tokens-per-batch sets the budget on either device (both fields), so what is measured is what
        # was asked for; by default the runner's own budget for the device applies.
        a = self.args
        budget = (
            {}
            if a.tokens_per_batch is None
            else {"tokens_per_batch": a.tokens_per_batch, "cpu_tokens_per_batch": a.tokens_per_batch}
        )
        return ModelSpec(
            role="bench",
            id=model_id,
            path=str(folder),
            dtype=self.dtype_name,
            device=self.device,
            **budget,
            **kw,
        )

    def _load(self, folder: Path, auto):
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = auto.from_pretrained(folder, dtype=self.dtype, use_safetensors=True, local_files_only=True)
        return tok, model.to(self.device).eval()

    def _session(self):
        if self.spark is None:
            from jobs.config import SparkConf
            from jobs.session import get_spark

            w = self.workers
            self.spark = get_spark(
                SparkConf(
                    master=f"local[{w}]", shuffle_partitions=w, ui=False, progress=False, log_level="ERROR"
                )
            )
            self.spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(self.args.arrow_batch))
        return self.spark

    def _spark_method(self, transform, value_col: str, texts: list[str]) -> Callable[[], tuple[float, int]]:
        import pandas as pd
        from pyspark.sql import functions as F

        spark = self._session()
        pdf = pd.DataFrame({"doc_id": [f"d{i:05d}" for i in range(len(texts))], "text": texts})
        docs = spark.createDataFrame(pdf, "doc_id string, text string").repartition(self.workers).cache()
        docs.count()
        scored = docs.transform(transform)

        def in_spark() -> tuple[float, int]:
            row = scored.agg(F.sum(value_col).alias("v"), F.sum("n_tokens").alias("n")).first()
            return float(row["v"]), int(row["n"])

        return in_spark

    # ------------------------------------------------------------------------------------------ workloads

    def perplexity(self, tmp: Path) -> bool:
        import numpy as np
        import pandas as pd
        from transformers import AutoModelForCausalLM

        from udfs.models import get_runner

        a = self.args
        if a.model:
            folder, note = Path(a.model).expanduser().resolve(), a.model
        else:
            folder = build_model(tmp / "lm", self.pool, a.vocab, a.context, a.width, a.layers)
            note = f"random GPT-2 {a.layers}x{a.width}, context {a.context}, BPE vocab {a.vocab}"
        tok, model = self._load(folder, AutoModelForCausalLM)
        max_length = a.max_length or model_max_length(model, tok)
        stride = max(1, min(a.stride or max_length // 2, max_length - 1))  # as the runner does
        spec = self._spec(folder, "bench-lm", max_length=max_length, stride=stride)
        base = Baselines(model, tok, max_length, stride, self.device, a.batch_size)
        runner = get_runner(spec, "causal_lm")
        n_ids = [len(base._ids(t)) for t in self.texts]
        n_scored = sum(n - 1 for n in n_ids)
        n_input = window_tokens(n_ids, max_length, stride)
        n_windows = sum(len(guide_windows(n, max_length, stride)) for n in n_ids)
        body, head = flop_params(model)
        flops = 2 * (body * n_input + head * n_scored)
        pct = np.percentile(n_ids, [10, 50, 90, 100]).astype(int)
        print(
            f"\n== perplexity: {note}; {sum(q.numel() for q in model.parameters()) / 1e6:.1f}M parameters "
            f"({body / 1e6:.1f}M body + {head / 1e6:.1f}M head in matmuls), "
            f"{model.config._attn_implementation} attention\n   {self.device} {self.dtype_name}, "
            f"window {max_length}, stride {stride}; tokens/doc "
            f"p10/p50/p90/max {'/'.join(map(str, pct))}; {n_scored:,} scored tokens in {n_windows:,} windows "
            f"({n_input:,} input tokens); {flops / 1e12:.2f} TFLOP per pass"
        )

        def in_process() -> tuple[float, int]:
            res = runner.predict_batch(pd.Series(self.texts))
            return float(res["nll_sum"].sum()), int(res["n_tokens"].sum())

        methods: dict[str, Callable[[], tuple[float, int]]] = {}
        if a.spark:
            from jobs.score_perplexity import perplexities

            methods["runner, Spark"] = self._spark_method(perplexities(spec), "nll_sum", self.texts)
        loop = "batch size 1, model(window, labels=...)"
        return self._run(
            methods, in_process, runner, base, self.texts, (loop, "windows"), flops, n_scored, "NLL"
        )

    def prrc(self, tmp: Path) -> bool:
        import pandas as pd
        from transformers import AutoModelForSequenceClassification

        from udfs.models import get_runner

        a = self.args
        if a.rater:
            folder, note = Path(a.rater).expanduser().resolve(), a.rater
        else:
            folder = build_classifier(tmp / "rater", a.rater_width, a.rater_layers)
            note = f"random 6-class BERT {a.rater_layers}x{a.rater_width}, WordPiece vocab 30522"
        tok, model = self._load(folder, AutoModelForSequenceClassification)
        spec = self._spec(folder, "bench-rater")
        runner = get_runner(spec, "classifier")
        room = runner.max_length - 2
        texts = [t for t in self.texts if len(tok(t, add_special_tokens=False)["input_ids"]) <= room]
        n_text = sum(len(ids) for ids in tok(texts, add_special_tokens=False)["input_ids"])
        n_input = n_text + 2 * len(texts)
        body, _ = flop_params(model)
        flops = 2 * body * n_input
        print(
            f"\n== prrc (one rater of four): {note}; {sum(q.numel() for q in model.parameters()) / 1e6:.1f}M "
            f"parameters ({body / 1e6:.1f}M in a token's matmuls), {model.config._attn_implementation} "
            f"attention\n   {self.device} {self.dtype_name}; {len(texts)} texts that fit {runner.max_length} "
            f"tokens, {n_input:,} input tokens; {flops / 1e12:.2f} TFLOP per pass"
        )
        base = ClassifierBaselines(model, tok, self.device, a.batch_size)

        def in_process() -> tuple[float, int]:
            res = runner.predict_batch(pd.Series(texts))
            return float(res["expected"].sum()), int(res["n_tokens"].sum())

        methods: dict[str, Callable[[], tuple[float, int]]] = {}
        if a.spark:
            # Only the Spark method needs pyspark: --no-spark runs where it is not installed (a GPU box).
            from pyspark.sql.types import (
                DoubleType,
                IntegerType,
                LongType,
                StringType,
                StructField,
                StructType,
            )

            from jobs.scoring import model_transform

            schema = StructType(
                [
                    StructField("doc_id", StringType(), False),
                    StructField("expected", DoubleType(), False),
                    StructField("label", IntegerType(), False),
                    StructField("n_tokens", LongType(), False),
                ]
            )
            methods["runner, Spark"] = self._spark_method(
                model_transform(spec, "classifier", schema, ["doc_id"]), "expected", texts
            )
        return self._run(
            methods, in_process, runner, base, texts, ("batch size 1", "texts"), flops, n_text, None
        )

    # ------------------------------------------------------------------------------------------ timing

    def _run(self, methods, in_process, runner, base, texts, labels, flops, n_tokens, what) -> bool:
        """Add the in-process runner and the two loops to ``methods``, warm every method up, time them.

        ``what`` names the checksum (perplexity: "NLL", held to the share-of-peak target) or is None (the
        rater: Σ expected rating, no peak target); ``labels`` are (the loop's note, what (b) batches).
        """
        import pandas as pd

        methods["runner, in-process"] = in_process
        methods["(a) per-document loop"] = lambda: base.per_document(texts)
        methods["(b) padded batches"] = lambda: base.padded_batches(texts)
        loop, unit = labels
        notes = {
            "runner, Spark": f"local[{self.workers}], torch threads = spark.task.cpus",
            "runner, in-process": f"{runner.budget} tokens per batch on {self.device}",
            "(a) per-document loop": loop,
            "(b) padded batches": f"{self.args.batch_size} {unit} per forward, document order",
        }
        # Spark's workers start and load the model; allocator and kernels warm up in-process.
        if "runner, Spark" in methods:
            t0 = os.times().elapsed
            methods["runner, Spark"]()
            print(f"   Spark warm-up (workers start, model load per worker): {os.times().elapsed - t0:.1f} s")
        warm = texts[: max(1, len(texts) // 20)]
        runner.predict_batch(pd.Series(warm))
        base.per_document(warm[:3])
        base.padded_batches(warm)
        target = TARGET_PEAK if what else None
        return self._report(methods, notes, flops, n_tokens, what or "Σ expected", target_peak=target)

    def _report(self, methods, notes, flops: float, n_tokens: int, what: str, target_peak) -> bool:
        """Time every method ``--repeat`` times between two peak measurements; print rates, shares, ratios."""
        sec: dict[str, list[float]] = {k: [] for k in methods}
        share: dict[str, list[float]] = {k: [] for k in methods}
        share_cpu: dict[str, list[float]] = {k: [] for k in methods}
        results: dict[str, tuple[float, int]] = {}
        peaks: list[float] = []
        load0 = os.getloadavg()[0]
        for _ in range(self.args.repeat):
            for name, fn in methods.items():
                p0, c0 = self.peak.measure()
                s, cpu_s, value, n = timed(fn, self.cuda)
                p1, c1 = self.peak.measure()
                sec[name].append(s)
                share[name].append(flops / s / ((p0 + p1) / 2))
                share_cpu[name].append(flops / cpu_s / ((c0 + c1) / 2) if cpu_s > 0 else float("nan"))
                peaks += [p0, p1]
                results[name] = (value, n)
        load1 = os.getloadavg()[0]
        med = {k: statistics.median(v) for k, v in sec.items()}
        peak = statistics.median(peaks)
        print(
            f"   median of {self.args.repeat} rounds, same {n_tokens:,} text tokens; load average "
            f"{load0:.1f} before, {load1:.1f} after; matmul peak {peak / 1e9:,.0f} GFLOP/s wall "
            f"(median of the {len(peaks)} measurements around the calls)"
        )
        print(f"   {'method':<24} {'s':>7} {'tokens/s':>9} {'GFLOP/s':>8} {'of peak':>8} {'per CPU-s':>9}")
        for name in methods:
            cpu = statistics.median(share_cpu[name])
            # The Spark runner computes in its workers: this process's CPU time says nothing of it.
            cpu_txt = "-" if name == "runner, Spark" or self.cuda else f"{100 * cpu:.0f}%"
            print(
                f"   {name:<24} {med[name]:7.2f} {n_tokens / med[name]:9,.0f} "
                f"{flops / med[name] / 1e9:8,.1f} {100 * statistics.median(share[name]):7.1f}% "
                f"{cpu_txt:>9}  {notes[name]}"
            )
        ok = True
        ref = results["(a) per-document loop"][0]
        for name, (value, n) in results.items():
            rel = abs(value - ref) / max(abs(ref), 1e-12)
            good = rel <= self.rtol and n == n_tokens
            ok &= good
            if not good:
                print(f"   MISMATCH {name}: {what} {value:,.6f} vs {ref:,.6f} in (a), tokens {n:,}")
        print(
            f"   agreement: {what} within {self.rtol:g} of (a) and the same {n_tokens:,} tokens in every "
            f"method: {'ok' if ok else 'NO'}"
        )
        lead = "runner, Spark" if "runner, Spark" in methods else "runner, in-process"
        for label, other, target in (
            ("(a)", "(a) per-document loop", TARGET_A),
            ("(b)", "(b) padded batches", TARGET_B),
        ):
            r = med[other] / med[lead]
            rounds = ", ".join(f"{o / x:.2f}" for x, o in zip(sec[lead], sec[other], strict=True))
            met = "met" if r >= target else "NOT met"
            print(f"   {lead} / {label} = {r:5.2f}  [{rounds}]  (target >= {target} on CPU: {met})")
        if lead != "runner, in-process":
            own = med["runner, in-process"]
            print(
                f"   in-process runner / (a) = {med['(a) per-document loop'] / own:5.2f},"
                f" / (b) = {med['(b) padded batches'] / own:5.2f}"
            )
        if target_peak is not None:
            for k in ("runner, Spark", "runner, in-process"):
                if k in share:
                    s = statistics.median(share[k])
                    print(
                        f"   {k} share of the matmul peak {100 * s:.1f}% "
                        f"(target >= {100 * target_peak:.0f}%: {'met' if s >= target_peak else 'NOT met'})"
                    )
        if self.cuda:
            import torch

            name = torch.cuda.get_device_name()
            sheet = self.args.peak_tflops or peak_tflops(name)
            if sheet:
                mfu = flops / med[lead] / (sheet * 1e12)
                print(
                    f"   {name}: datasheet bf16 dense {sheet:g} TFLOP/s, "
                    f"{lead} MFU against it {100 * mfu:.1f}%"
                )
        return ok


if __name__ == "__main__":
    sys.exit(main())
