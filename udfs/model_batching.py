"""Where and how a runner computes (device, dtype, threads), and the token-budget batching every runner
shares: length-sorted batches under ``padded length × rows ≤ tokens_per_batch``, right padding, and the
strided windows and summed next-token NLL of perplexity scoring. Used by ``udfs.models``.
"""

from __future__ import annotations

import logging

import numpy as np

from udfs.model_spec import ModelError

# The runners' logger (``udfs.models`` logs under the same name), so one setting covers both.
log = logging.getLogger("corpuslake.models")


def pick_device(requested: str) -> str:
    """``cuda[:n]`` when a GPU is usable, else ``cpu``; the GPU Spark assigned to this task wins.

    ``auto`` and ``cuda`` fall back to CPU with a warning when no GPU is visible, so a profile written for
    a GPU cluster still runs (slowly) on a laptop.
    """
    import torch

    if requested == "cpu":
        return "cpu"
    if not torch.cuda.is_available():
        log.warning(
            "corpuslake: no GPU visible to this worker (device=%s); scoring on CPU in fp32", requested
        )
        return "cpu"
    try:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        gpus = ctx.resources().get("gpu") if ctx is not None else None
        if gpus is not None and gpus.addresses:
            return f"cuda:{gpus.addresses[0]}"
    except Exception:  # not inside a Spark task, or no resources API: use the default card
        pass
    return "cuda"


def match_task_threads() -> None:
    """Inside a Spark task, use as many torch threads as the task has CPUs (``spark.task.cpus``).

    Each concurrent task is its own Python worker; letting each one start a thread per core makes them
    fight over the cores, and OpenMP's spin-waits turn that into 10-30x slower small kernels.
    """
    try:
        from pyspark import TaskContext

        ctx = TaskContext.get()
    except Exception:
        return
    if ctx is not None:
        import torch

        torch.set_num_threads(max(1, int(ctx.cpus())))


def pick_dtype(requested: str, device: str, gpu_dtype: str = "bfloat16"):
    """fp32 on CPU for ``auto``; on CUDA ``auto`` means ``gpu_dtype`` (bf16 unless the card lacks it)."""
    import torch

    if requested == "auto":
        requested = "float32" if device == "cpu" else gpu_dtype
    if requested == "float32":
        return torch.float32
    if requested == "float16":
        return torch.float16
    if requested == "bfloat16":
        if device.startswith("cuda") and not torch.cuda.is_bf16_supported():
            return torch.float16
        return torch.bfloat16
    raise ModelError(f"unknown dtype {requested!r}")


def fuse_activations(model) -> int:
    """Swap tanh-GELUs written as Python arithmetic for torch's one-kernel ``gelu(approximate="tanh")``.

    GPT-2, GPT-J, GPT-Neo and Phi name ``gelu_new``: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) as eight
    elementwise passes over the widest activation of the model ([tokens, 4·hidden]), which on a CPU costs a
    quarter of the layer's matmul time. The fused kernel computes the same function (outputs agree to
    ~1e-7 relative, transformers' own note), so scores do not move beyond float rounding.

    Returns:
        How many activation modules were swapped.
    """
    from transformers import activations

    fused = getattr(activations, "GELUTanh", None) or getattr(activations, "PytorchGELUTanh", None)
    slow = tuple(
        c for c in (getattr(activations, n, None) for n in ("NewGELUActivation", "FastGELUActivation")) if c
    )
    if fused is None or not slow:
        return 0
    n = 0
    for parent in model.modules():
        for name, child in list(parent.named_children()):
            if type(child) in slow:  # exact types: a subclass may change the function
                setattr(parent, name, fused())
                n += 1
    return n


# ---------------------------------------------------------------------------------------------- batching


def token_batches(lengths: list[int] | np.ndarray, tokens_per_batch: int) -> list[np.ndarray]:
    """Indexes grouped into batches, longest first, with ``max length × rows ≤ tokens_per_batch``.

    A piece longer than the budget gets a batch of its own.
    """
    lengths = np.asarray(lengths)
    order = np.argsort(-lengths, kind="stable")
    batches, cur, cur_max = [], [], 0
    for i in order:
        n = int(lengths[i])
        new_max = max(cur_max, n)
        if cur and new_max * (len(cur) + 1) > tokens_per_batch:
            batches.append(np.array(cur))
            cur, new_max = [], n
        cur.append(i)
        cur_max = new_max
    if cur:
        batches.append(np.array(cur))
    return batches


def pad(seqs: list[list[int]], pad_id: int):
    """Right-padded ``input_ids`` and ``attention_mask`` tensors."""
    import torch

    lengths = np.fromiter((len(s) for s in seqs), dtype=np.int64, count=len(seqs))
    ids = np.full((len(seqs), int(lengths.max())), pad_id, dtype=np.int64)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = s
    mask = np.arange(ids.shape[1]) < lengths[:, None]
    return torch.from_numpy(ids), torch.from_numpy(mask.astype(np.int64))


def strided_windows(n_ids: int, max_length: int, stride: int) -> list[tuple[int, int, int]]:
    """Windows ``(begin, end, n_targets)`` over a sequence of ``n_ids`` ids whose first id is context only.

    Every position 1..n_ids-1 is a target exactly once; a window scores its last ``n_targets`` positions
    with the rest of the window (up to ``max_length - stride`` earlier tokens) as context. This is the
    sliding-window evaluation of the transformers perplexity guide.
    """
    out, prev_end, begin = [], 1, 0
    while True:
        end = min(begin + max_length, n_ids)
        n_targets = end - max(prev_end, begin + 1)
        if n_targets > 0:
            out.append((begin, end, n_targets))
        prev_end = end
        if end >= n_ids:
            return out
        begin += stride


def _window_batch(windows, batch, pad_id: int, pin: bool):
    """Host tensors of one batch of windows: ids, mask, the scored positions, their labels and owners.

    Built on the CPU (and pinned when the model is on a GPU) so that the device copies are asynchronous
    and nothing in the batch loop waits on the GPU to learn a size (a boolean index on the device would).
    """
    import torch

    seqs = [windows[j][1] for j in batch]
    inp, mask = pad(seqs, pad_id)
    # Position t predicts token t+1; only each window's last n_targets tokens are scored, so the head and
    # the log-softmax run over the predicting positions alone (not context or padding).
    keep = np.zeros(tuple(inp.shape), dtype=bool)
    owner = np.empty(len(batch), dtype=np.int64)
    for r, j in enumerate(batch):
        n, k = len(seqs[r]), windows[j][2]
        keep[r, n - 1 - k : n - 1] = True
        owner[r] = windows[j][0]
    rr, cc = np.nonzero(keep)  # row-major, the order in which ``logits[keep]`` lists the positions
    labels = inp.numpy()[rr, cc + 1]
    out = (inp, mask, torch.from_numpy(keep), torch.from_numpy(labels), torch.from_numpy(owner[rr]))
    return tuple(t.pin_memory() for t in out) if pin else out


def windowed_nll(
    model,
    windows,
    n_owners: int,
    pad_id: int,
    tokens_per_batch: int,
    device=None,
    prefetch: bool | None = None,
):
    """Summed next-token NLL (nats) per owner over windows ``(owner, ids, n_targets)``.

    A window scores its last ``n_targets`` tokens, the rest of it being context (see ``strided_windows``);
    windows run in ``token_batches`` of right-padded rows. The LM head runs at the scored positions only
    (``logits_to_keep``, for models that take it): a window's context and padding need hidden states but
    no vocabulary projection, which on a strided long text is half the positions. The sums stay on
    ``device`` (``index_add``, so a batch costs no host sync) in float64, because a long text sums many
    thousands of token NLLs. On a GPU the next batch's host tensors are built by a second thread while
    this one runs, and copied from pinned memory without blocking, so the GPU does not wait on Python
    between batches (``prefetch``: default on a GPU only).

    Returns:
        A float64 tensor of ``n_owners`` sums on ``device``.
    """
    from concurrent.futures import ThreadPoolExecutor

    import torch

    keep_arg = _takes_logits_to_keep(model)
    # No KV cache: each window is scored in one forward pass, and building a cache costs two concatenations
    # per layer per batch (12% of an H200's time on a 16x2048 GPT-2, in a profile) for nothing.
    no_cache = {"use_cache": False} if takes_arg(model, "use_cache") else {}
    nll = torch.zeros(n_owners, dtype=torch.float64, device=device)
    batches = token_batches([len(w[1]) for w in windows], tokens_per_batch)
    gpu = device is not None and torch.device(device).type == "cuda"
    # One builder thread on a GPU, where the host would otherwise sit between batches; on a CPU torch's
    # own threads already fill the cores, and the build is a small share of a forward.
    prefetch = gpu if prefetch is None else prefetch
    with ThreadPoolExecutor(1) if prefetch else _Inline() as pool, torch.inference_mode():
        ahead = pool.submit(_window_batch, windows, batches[0], pad_id, gpu) if batches else None
        for i in range(len(batches)):
            host = ahead.result()
            if i + 1 < len(batches):
                ahead = pool.submit(_window_batch, windows, batches[i + 1], pad_id, gpu)
            inp, mask, keep, labels, rows = (t.to(device, non_blocking=gpu) for t in host)
            kw = {"logits_to_keep": keep, **no_cache} if keep_arg else no_cache
            logits = model(input_ids=inp, attention_mask=mask, **kw).logits
            if logits.dim() == 3:  # the model ignored or lacks logits_to_keep: all positions came back
                logits = logits[keep]
            # One log-softmax over [scored tokens, vocab] in fp32 (a bf16 one loses ~1e-2 nats per token).
            tok_nll = torch.nn.functional.cross_entropy(logits.float(), labels, reduction="none")
            nll.index_add_(0, rows, tok_nll.double())
    return nll


class _Inline:
    """``ThreadPoolExecutor``'s ``submit`` run in the calling thread (a done future), for the CPU path."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def submit(self, fn, *args):
        from concurrent.futures import Future

        f = Future()
        f.set_result(fn(*args))
        return f


def takes_arg(model, name: str) -> bool:
    """Whether ``model.forward`` names the argument ``name`` in its signature."""
    import inspect

    try:
        return name in inspect.signature(model.forward).parameters
    except (TypeError, ValueError):
        return False


def _takes_logits_to_keep(model) -> bool:
    """Whether ``model.forward`` takes a per-row boolean ``logits_to_keep``.

    transformers 4.50-4.x take an int or a 1-D index only; the 2-D boolean form comes with the shared
    ``slice_logits_to_keep`` helper (transformers 5), which causal LMs use to cut their hidden states.
    """
    from transformers import modeling_utils

    return hasattr(modeling_utils, "slice_logits_to_keep") and takes_arg(model, "logits_to_keep")
