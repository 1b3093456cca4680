"""The small-LM training runs (Meta-rater's proxies, evaluate's arms) against the machine's matmul peak.

    .venv/bin/python bench/train.py [--device cuda] [--sizes 2x128:128:16,12x768:1024:16] [--train-tokens N]

Each size ``LAYERSxWIDTH[:SEQ_LEN[:BATCH]]`` is one model of ``udfs.lm_train`` (GPT-2, heads of 64, or
fewer for narrow models), trained by ``udfs.lm_train.train`` (the function a proxy task and an evaluate
task call) on the sample corpus's texts packed to ``--train-tokens`` (rounded down to whole steps), then
measured by ``udfs.lm_train.score_texts`` (the evaluate stage's held-out bits per byte) on the next texts.
The tokenizer is the stages' default: bytes (``evaluate.model.tokenizer: null``).

Hardware limit: the dense matmul rate in the compute dtype (``score_parts.MatmulPeak``: bf16 on CUDA,
where the stages autocast, fp32 on CPU) measured in this process right before and right after each call;
each call's share of peak is its model FLOP/s over the mean of those two. Model FLOPs: training
6 · N · tokens (forward and backward; N = ``score_parts.matmul_params``, the LM head included, since every
position is a target), evaluation 2 · N · input tokens (attention's own FLOPs left out, as in
bench/score.py). Model build and the first step's kernel selection are in the training time, as they are in a
task; ``--repeat`` runs give a median.

No target is set for these runs: they are minutes of a stage at the project's default size (2x128), so the
numbers say how far from the limit a task runs, and how much a wider model closes the gap.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from score_parts import MatmulPeak, clock, load_texts, matmul_params, peak_tflops  # noqa: E402


def parse_size(text: str, default_seq: int, default_batch: int) -> tuple[int, int, int, int]:
    """``LxW[:SEQ[:BATCH]]`` → (layers, width, seq_len, batch)."""
    head, *rest = text.split(":")
    layers, width = (int(x) for x in head.lower().split("x"))
    seq = int(rest[0]) if rest else default_seq
    batch = int(rest[1]) if len(rest) > 1 else default_batch
    return layers, width, seq, batch


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument(
        "--sizes",
        default=None,
        help="comma list of LxW[:SEQ[:BATCH]] (default: 2x128:128:16 on CPU; on CUDA also 12x768 and "
        "24x1024 at 1024 x 16)",
    )
    p.add_argument("--train-tokens", type=int, default=None, help="per model (default 65,536 CPU, 2M CUDA)")
    p.add_argument("--eval-docs", type=int, default=200, help="held-out texts scored after training")
    p.add_argument("--repeat", type=int, default=1, help="runs per size; medians are reported")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()

    import torch

    from udfs.lm_train import LMSpec, encode, pack, score_texts, tokenizer_json, train
    from udfs.model_batching import strided_windows

    cuda = args.device == "cuda"
    if cuda and not torch.cuda.is_available():
        p.error("--device cuda: no GPU visible to torch")
    sizes = args.sizes or ("2x128:128:16,12x768:1024:16,24x1024:1024:16" if cuda else "2x128:128:16")
    budget = args.train_tokens or (2_000_000 if cuda else 65_536)
    dtype = torch.bfloat16 if cuda else torch.float32
    peak = MatmulPeak(dtype, args.device)
    with tempfile.TemporaryDirectory() as tmp:
        _, source, pool = load_texts(0, 0, 0, Path(tmp))
    tok_json, eos = tokenizer_json(None)
    name = torch.cuda.get_device_name() if cuda else f"cpu, {torch.get_num_threads()} torch threads"
    sheet = peak_tflops(name) if cuda else None
    print(f"{len(pool):,} texts from {source}; {name}; {'bf16 autocast' if cuda else 'fp32'}; byte tokenizer")
    print(
        f"{'model':>22} {'params':>8} {'tokens':>10} {'train s':>8} {'tok/s':>10} {'TFLOP/s':>8} "
        f"{'of peak':>8} {'loss':>6} {'eval s':>7} {'of peak':>8} {'bpb':>6}"
    )
    for size in sizes.split(","):
        layers, width, seq, batch = parse_size(size, 128, 16)
        spec = LMSpec(
            tok_json,
            eos,
            n_layer=layers,
            n_embd=width,
            n_head=max(1, width // 64) if width >= 256 else 4,
            seq_len=seq,
            batch_size=batch,
            device=args.device,
        )
        n_tok = spec.budget(budget)
        stream = pack(spec, pool, n_tok)
        # Held-out texts: the pool's last ones, which a budget under the pool's size never reaches.
        heldout = pool[-args.eval_docs :]
        # Input tokens of the evaluation: each text after a separator, in windows strided by half a context.
        n_eval = sum(
            e - b
            for ids in encode(spec, heldout)
            for b, e, _ in strided_windows(len(ids) + 1, seq, max(1, seq // 2))
        )
        rows = []
        for r in range(args.repeat):
            before = peak.measure()[0]
            t0, _ = clock(cuda)
            trained = train(spec, stream, args.seed + r)
            t1, _ = clock(cuda)
            mid = peak.measure()[0]
            t2, _ = clock(cuda)
            bpb, _ = score_texts(trained, spec, heldout)
            t3, _ = clock(cuda)
            after = peak.measure()[0]
            n = matmul_params(trained.model)
            rows.append((t1 - t0, (before + mid) / 2, t3 - t2, (mid + after) / 2, n, trained.final_loss, bpb))
            del trained
            if cuda:
                torch.cuda.empty_cache()
        t_train = statistics.median(x[0] for x in rows)
        t_eval = statistics.median(x[2] for x in rows)
        n = rows[0][4]
        f_train = 6 * n * n_tok / t_train
        share_t = statistics.median(6 * n * n_tok / x[0] / x[1] for x in rows)
        share_e = statistics.median(2 * n * n_eval / x[2] / x[3] for x in rows)
        label = f"{layers}x{width} ctx {seq} b {batch}"
        print(
            f"{label:>22} {n / 1e6:7.1f}M {n_tok:10,} {t_train:8.2f} {n_tok / t_train:10,.0f} "
            f"{f_train / 1e12:8.3f} {100 * share_t:7.1f}% {statistics.median(x[5] for x in rows):6.3f} "
            f"{t_eval:7.2f} {100 * share_e:7.1f}% {statistics.median(x[6] for x in rows):6.3f}"
        )
        if sheet:
            mfu = f_train / (sheet * 1e12)
            print(f"{'':>22} datasheet bf16 dense {sheet:g} TFLOP/s: training MFU {100 * mfu:.1f}%")
    print(f"matmul peak [{peak.n}]² {dtype}: {peak.measure()[0] / 1e12:.3f} TFLOP/s (last measurement)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
