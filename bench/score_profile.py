"""Where one ``predict_batch`` of the perplexity runner spends its time: a ``torch.profiler`` table.

    .venv/bin/python bench/score_profile.py [--device cuda] [--width 2048 --layers 16 --context 1024]

Builds the same random GPT-2 as bench/score.py (``score_parts.build_model``, BPE trained on the sample) and
the same texts, warms the runner up, times two calls, then profiles a third and prints the operators by
their own time (GPU kernel time on CUDA) and the call's wall time. On CUDA the table's "Self CUDA time
total" against that wall time is how busy the GPU was; the rest is the host (tokenizing, batching, copies).
This is how the README's GPU findings were read (the KV cache the scorer built for nothing, 12% of an
H200's time).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from score_parts import build_model, load_texts  # noqa: E402 (bench/ is the script's own folder on sys.path)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--width", type=int, default=None, help="hidden size (default 2048 on CUDA, 256 on CPU)")
    p.add_argument("--layers", type=int, default=None, help="layers (default 16 on CUDA, 2 on CPU)")
    p.add_argument("--context", type=int, default=None, help="positions (default 1024 on CUDA, 256 on CPU)")
    p.add_argument("--vocab", type=int, default=8192)
    p.add_argument("--docs", type=int, default=None, help="texts (default 1000 on CUDA, 50 on CPU)")
    p.add_argument("--rows", type=int, default=25, help="operators printed")
    args = p.parse_args()

    import pandas as pd
    import torch

    from udfs.model_spec import ModelSpec
    from udfs.models import get_runner

    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        p.error("--device cuda: no GPU visible to torch")
    width = args.width or (2048 if cuda else 256)
    layers = args.layers or (16 if cuda else 2)
    context = args.context or (1024 if cuda else 256)
    tmp = Path(tempfile.mkdtemp(prefix="score-profile-"))
    texts, _, pool = load_texts(args.docs or (1000 if cuda else 50), 50, 20_000, tmp)
    folder = build_model(tmp / "lm", pool, args.vocab, context, width, layers)
    spec = ModelSpec(
        role="bench",
        id="profile",
        path=str(folder),
        dtype="bfloat16" if cuda else "float32",
        device=args.device,
        max_length=context,
        stride=context // 2,
    )
    runner = get_runner(spec, "causal_lm")
    batch = pd.Series(texts)
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    runner.predict_batch(batch)  # warm-up: kernels chosen, caches filled
    for _ in range(2):
        sync()
        t = time.perf_counter()
        runner.predict_batch(batch)
        sync()
        print(f"predict_batch {time.perf_counter() - t:.3f} s ({len(texts)} texts, GPT-2 {layers}x{width})")
    acts = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if cuda else [])
    with torch.profiler.profile(activities=acts) as prof:
        t = time.perf_counter()
        runner.predict_batch(batch)
        sync()
        wall = time.perf_counter() - t
    table = prof.key_averages()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    print(table.table(sort_by=key, row_limit=args.rows, max_name_column_width=70))
    # On CUDA the table's last line ("Self CUDA time total") is the GPU's busy time: compare it to this.
    print(f"profiled call {wall:.3f} s wall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
