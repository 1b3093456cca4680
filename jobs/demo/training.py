"""Training helpers the demo LMs and raters share: fixed threads and seed, quiet saves, the LR schedule."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def torch_settings(seed: int, threads: int) -> Iterator[None]:
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
def quiet_saves() -> Iterator[None]:
    """No per-file progress bar from ``save_pretrained``: the build prints one line per model instead."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def lr_lambda(steps: int) -> Callable[[int], float]:
    """Linear warm-up over 10% of the steps, then cosine decay to 10% of the peak."""
    warm = max(1, steps // 10)

    def f(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = (step - warm) / max(1, steps - warm)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t))

    return f


def train_step(model, opt, sched, loss) -> float:
    """One optimiser step on ``loss`` (gradients clipped to norm 1, then the schedule); the loss value."""
    import torch

    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    return loss.item()
