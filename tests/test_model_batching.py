"""The runners' fast paths against the plain ones on a tiny GPT-2: LM head at scored positions, fused GELU."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from udfs.model_batching import fuse_activations, strided_windows, windowed_nll

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
import tiny_models  # noqa: E402

TEXTS = [
    "The river rose overnight and the ferry stopped running until the water fell again.",
    "Prices of wheat and barley moved little this week; traders waited for the harvest report.",
    "a b",
    "Short.",
    " ".join(f"word{i % 37} and more text number {i}" for i in range(60)),  # several windows
]
CONTEXT = 32


@pytest.fixture(scope="module")
def lm(tmp_path_factory):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tiny_models.causal_lm(tmp_path_factory.mktemp("lm") / "lm", TEXTS, CONTEXT, seed=4)
    tok = AutoTokenizer.from_pretrained(folder)
    return folder, tok, AutoModelForCausalLM.from_pretrained(folder).eval()


class _NoKeep:
    """The same model behind a forward without ``logits_to_keep``: full logits, the fallback path."""

    def __init__(self, model):
        self.model = model

    def __call__(self, input_ids, attention_mask):
        return self.model(input_ids=input_ids, attention_mask=attention_mask)

    def forward(self, input_ids, attention_mask):
        return self(input_ids, attention_mask)


def _windows(tok):
    out = []
    for i, text in enumerate(TEXTS):
        full = [tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]
        out += [(i, full[b:e], k) for b, e, k in strided_windows(len(full), CONTEXT, CONTEXT // 2)]
    return out


def test_scored_positions_only_equal_full_logits_and_a_plain_loop(lm):
    import torch

    _, tok, model = lm
    windows = _windows(tok)
    assert max(len(w[1]) for w in windows) == CONTEXT and any(k < len(w) - 1 for _, w, k in windows)
    fast = windowed_nll(model, windows, len(TEXTS), tok.pad_token_id, 4 * CONTEXT)
    full = windowed_nll(_NoKeep(model), windows, len(TEXTS), tok.pad_token_id, 4 * CONTEXT)
    # The GPU path's builder thread (next batch built while this one runs), here on the CPU.
    ahead = windowed_nll(model, windows, len(TEXTS), tok.pad_token_id, CONTEXT, prefetch=True)
    # Independent reference: one window per forward, log-softmax over all positions, no padding.
    want = torch.zeros(len(TEXTS), dtype=torch.float64)
    with torch.no_grad():
        for owner, ids, k in windows:
            lp = torch.log_softmax(model(torch.tensor([ids])).logits[0, :-1].double(), -1)
            tgt = torch.tensor(ids[1:])
            want[owner] -= lp[len(ids) - 1 - k :].gather(-1, tgt[len(ids) - 1 - k :, None]).sum()
    torch.testing.assert_close(fast, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(full, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(ahead, want, rtol=1e-5, atol=1e-6)


def test_fused_gelu_swaps_every_layer_and_keeps_the_scores(lm):
    import torch
    from transformers import AutoModelForCausalLM, activations

    folder, tok, model = lm
    fused = AutoModelForCausalLM.from_pretrained(folder).eval()
    assert fuse_activations(fused) == model.config.n_layer
    assert all(type(m.mlp.act) is activations.GELUTanh for m in fused.transformer.h)
    assert fuse_activations(fused) == 0  # nothing left to swap
    windows = _windows(tok)
    got = windowed_nll(fused, windows, len(TEXTS), tok.pad_token_id, 4 * CONTEXT)
    want = windowed_nll(model, windows, len(TEXTS), tok.pad_token_id, 4 * CONTEXT)
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
