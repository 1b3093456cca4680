"""The demo's causal LMs: fourteen small GPT-2 models, each trained on its own mixture of the sample.

They share one byte-level BPE tokenizer trained on the sample; each is scored on held-out documents (bits per
byte) and on the sample's benchmarks (multiple-choice accuracy), the y of the perplexity correlations.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from jobs.demo.model_inputs import CorpusDoc, MCItem
from jobs.demo.training import lr_lambda, quiet_saves, train_step
from udfs.model_batching import strided_windows, windowed_nll

#: Context window of the demo LMs; longer documents are scored in strided windows.
N_POSITIONS = 256
EOS = "<|endoftext|>"
_VOCAB_SIZE = 3000
# Evaluation batches (held-out windows, multiple-choice continuations): 16 full windows of tokens.
_EVAL_TOKENS_PER_BATCH = 16 * N_POSITIONS

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


_SCIENCE_TOPICS = ("science", "health", "environment")
_BUSINESS_TOPICS = ("finance", "law", "real_estate")
_ENTERTAINMENT_TOPICS = ("sports", "music", "gaming")
_ALL = ("prose", "forum", "code", "math", "boilerplate", "spam", "non_english", "short")

#: The pool: fourteen models, so the rank estimators resolve more than a handful of orders, on mixtures that
#: overlap in different ways (broad and narrow, clean and noisy, English and not) and at different sizes and
#: step counts, so they differ in quality as well as in what they know.  Compute per model is about 40% of
#: the six-model pool's, and the smaller sizes dominate, so the pool trains in about the time the six took.
LM_SPECS = (
    LMSpec("lm-a", "the whole web mix", dict.fromkeys(_ALL), n_layer=3, n_embd=128, steps=130, lr=2e-3),
    LMSpec(
        "lm-b",
        "news-like prose",
        {"prose": _NEWS_TOPICS, "short": _NEWS_TOPICS},
        n_layer=2,
        n_embd=128,
        steps=90,
        lr=2e-3,
    ),
    LMSpec(
        "lm-c",
        "lifestyle prose and forums",
        {"prose": _LIFESTYLE_TOPICS, "forum": None, "short": _LIFESTYLE_TOPICS},
        n_layer=2,
        n_embd=96,
        steps=90,
        lr=3e-3,
    ),
    LMSpec(
        "lm-d",
        "technical: code, maths, programming forums, science and education prose",
        {"code": None, "math": None, "forum": ("programming",), "prose": ("science", "math", "education")},
        n_layer=2,
        n_embd=96,
        steps=90,
        lr=3e-3,
    ),
    LMSpec(
        "lm-e",
        "noisy pages: forums, boilerplate, spam, short posts",
        {"forum": None, "boilerplate": None, "spam": None, "short": None},
        n_layer=1,
        n_embd=64,
        steps=100,
        lr=4e-3,
    ),
    LMSpec(
        "lm-f",
        "multilingual: German/French/Spanish pages plus English prose on the same topics",
        {"non_english": None, "prose": ("history", "cooking", "travel")},
        n_layer=1,
        n_embd=64,
        steps=80,
        lr=4e-3,
    ),
    LMSpec(
        "lm-g",
        "science, health and environment prose and posts",
        {"prose": _SCIENCE_TOPICS, "short": _SCIENCE_TOPICS, "forum": _SCIENCE_TOPICS},
        n_layer=2,
        n_embd=64,
        steps=100,
        lr=3e-3,
    ),
    LMSpec("lm-h", "worked maths only", {"math": None}, n_layer=1, n_embd=64, steps=80, lr=4e-3),
    LMSpec(
        "lm-i",
        "code tutorials and programming forums",
        {"code": None, "forum": ("programming",)},
        n_layer=1,
        n_embd=96,
        steps=80,
        lr=3e-3,
    ),
    LMSpec(
        "lm-j",
        "business: finance, law and real-estate prose with their site chrome and spam",
        {"prose": _BUSINESS_TOPICS, "boilerplate": _BUSINESS_TOPICS, "spam": _BUSINESS_TOPICS},
        n_layer=2,
        n_embd=64,
        steps=100,
        lr=3e-3,
    ),
    LMSpec("lm-k", "English prose on every topic", {"prose": None}, n_layer=2, n_embd=96, steps=100, lr=3e-3),
    LMSpec(
        "lm-l",
        "school subjects: history and education prose, science prose, worked maths",
        {"prose": ("history", "education", "science"), "math": None},
        n_layer=2,
        n_embd=64,
        steps=100,
        lr=3e-3,
    ),
    LMSpec(
        "lm-m",
        "entertainment: sports, music and gaming prose, forums and short posts",
        {"prose": _ENTERTAINMENT_TOPICS, "forum": _ENTERTAINMENT_TOPICS, "short": _ENTERTAINMENT_TOPICS},
        n_layer=1,
        n_embd=96,
        steps=80,
        lr=3e-3,
    ),
    LMSpec(
        "lm-n",
        "the filtered web mix: everything but spam, boilerplate and non-English pages, small",
        dict.fromkeys(("prose", "forum", "code", "math", "short")),
        n_layer=1,
        n_embd=64,
        steps=100,
        lr=4e-3,
    ),
)

# quick=True: the same pipeline with token-sized budgets, for tests (< 25 s in all).
_QUICK_STEPS = 8
_QUICK_BATCH = 4


def train_tokenizer(texts: list[str]):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_VOCAB_SIZE,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte encodable: no unknown tokens
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok


def _save_tokenizer(tokenizer, folder: Path) -> None:
    from transformers import GPT2TokenizerFast

    fast = GPT2TokenizerFast(
        tokenizer_object=tokenizer,
        bos_token=EOS,
        eos_token=EOS,
        unk_token=EOS,
        pad_token=EOS,  # GPT-2 has no pad token; padded positions are masked anyway
        model_max_length=N_POSITIONS,
    )
    fast.save_pretrained(folder)


def _slice(spec: LMSpec, docs: list[CorpusDoc]) -> list[CorpusDoc]:
    return [
        d
        for d in docs
        if d.category in spec.mix and (spec.mix[d.category] is None or d.topic in spec.mix[d.category])
    ]


def build_lm(
    tmp: Path, spec: LMSpec, tokenizer, train_docs, heldout, items, *, seed: int, quick: bool
) -> dict:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    start = time.perf_counter()
    eos = tokenizer.token_to_id(EOS)
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
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(steps))
    rng = np.random.default_rng(seed)
    offsets = np.arange(N_POSITIONS)
    losses = []
    model.train()
    for _ in range(steps):
        starts = rng.integers(0, len(stream) - N_POSITIONS, size=batch)
        x = torch.from_numpy(stream[starts[:, None] + offsets])
        logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), x[:, 1:].flatten())
        losses.append(train_step(model, opt, sched, loss))
    model.eval()

    folder = tmp / spec.model_id
    with quiet_saves():
        model.save_pretrained(folder)
    _save_tokenizer(tokenizer, folder)
    train_seconds = time.perf_counter() - start
    ev = eval_lm(model, tokenizer, heldout, items)
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


def _windows(
    ids: list[int], n_ctx: int = N_POSITIONS, stride: int = N_POSITIONS // 2
) -> list[tuple[list[int], int]]:
    """``(window, n_scored)`` over a token list whose first token (the <|endoftext|> prefix) is context
    only: the perplexity runner's ``strided_windows``, so each token is scored once, with at least
    ``n_ctx - stride`` tokens of context once the first window is full."""
    return [(ids[b:e], k) for b, e, k in strided_windows(len(ids), n_ctx, stride)]


def eval_lm(model, tokenizer, heldout: list[CorpusDoc], items: list[MCItem]) -> dict:
    """Held-out bits per byte (overall and per category, token-weighted) and benchmark accuracy."""
    eos = tokenizer.token_to_id(EOS)
    windows = [
        (k, window, n_scored)
        for k, doc in enumerate(heldout)
        for window, n_scored in _windows([eos, *tokenizer.encode(doc.text).ids])
    ]
    per_doc = windowed_nll(model, windows, len(heldout), eos, _EVAL_TOKENS_PER_BATCH).tolist()
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
            mc.append((len(mc), (ctx[-keep:] if keep > 0 else []) + cont, len(cont)))
            spans.append(len((" " + choice).encode("utf-8")))
    scores = windowed_nll(model, mc, len(mc), eos, _EVAL_TOKENS_PER_BATCH).tolist()
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
