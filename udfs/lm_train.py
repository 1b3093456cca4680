"""Small causal LMs trained from scratch on a fixed token budget, and their evaluation in bits per byte.

Executor side, no Spark: Meta-rater's proxy runs (``aggregate.weights.proxy: train``) and the
selection-effect experiment (``evaluate``) call these inside Spark tasks, one model per task.

- **Tokenizer**: one ``tokenizers`` JSON shared by every model of a run (``tokenizer_json``): a local
  folder's fast tokenizer, or bytes (256 byte tokens + ``<|endoftext|>``, nothing to train).
- **Data**: documents joined as one stream, each after an ``<|endoftext|>``, in the caller's (seeded)
  order and cut to exactly the budget (``pack``); the stream is cut into ``seq_len`` sequences whose
  order a seeded permutation shuffles, ``batch_size`` per step, each sequence seen once.
- **Model**: a GPT-2 or Llama config of the given size, random init under the seed, no dropout.
- **Schedule**: AdamW (betas 0.9/0.95), linear warm-up, cosine decay to ``min_lr_share`` of the peak,
  gradients clipped to norm 1; bf16 autocast on CUDA.
- **Evaluation**: every text is scored after an ``<|endoftext|>`` (so its first token is predicted too and
  all its bytes count), in strided windows of ``seq_len`` (``udfs.model_batching``); a continuation
  (an answer, a choice) is scored given its prompt. bits per byte = Σ nll / (ln 2 · Σ UTF-8 bytes).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from udfs.model_batching import match_task_threads, pick_device, strided_windows, windowed_nll

EOS = "<|endoftext|>"


class NotEnoughTokens(ValueError):
    """The documents hold fewer tokens than the budget."""

    def __init__(self, have: int, need: int):
        self.have, self.need = have, need
        super().__init__(f"the documents hold {have:,} tokens, fewer than the {need:,} to train on")


@dataclass(frozen=True)
class LMSpec:
    """What a task needs to train and score one model (plain values, picklable).

    Args:
        tokenizer_json: the shared tokenizer (``tokenizers`` JSON), from ``tokenizer_json``.
        eos_id: the id of the separator that starts every document and every scored text.
        arch: ``gpt2`` or ``llama``.
        n_layer, n_embd, n_head: the model's size.
        seq_len: context length in training and evaluation.
        batch_size: sequences per optimizer step.
        lr, warmup_share, min_lr_share, weight_decay: the schedule.
        device: ``auto``, ``cpu`` or ``cuda``.
        dtype: ``auto`` (bf16 autocast on CUDA), ``float32`` or ``bfloat16``.
        eval_tokens_per_batch: padded tokens per evaluation forward pass.
    """

    tokenizer_json: str
    eos_id: int
    arch: str = "gpt2"
    n_layer: int = 2
    n_embd: int = 128
    n_head: int = 4
    seq_len: int = 128
    batch_size: int = 16
    lr: float = 3e-3
    warmup_share: float = 0.1
    min_lr_share: float = 0.1
    weight_decay: float = 0.01
    device: str = "auto"
    dtype: str = "auto"
    eval_tokens_per_batch: int = 4096

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len

    def budget(self, tokens: int) -> int:
        """``tokens`` rounded down to whole steps: what a model given that budget trains on."""
        return tokens // self.tokens_per_step * self.tokens_per_step

    def describe(self) -> str:
        """One line for tables and summaries, e.g. ``gpt2 2x128 (4 heads), ctx 128, 16 seq/step``."""
        return (
            f"{self.arch} {self.n_layer}x{self.n_embd} ({self.n_head} heads), ctx {self.seq_len}, "
            f"{self.batch_size} seq/step, lr {self.lr:g}, vocab {vocab_size(self.tokenizer_json):,}"
        )


# ------------------------------------------------------------------------------------------- tokenizer


def byte_tokenizer_json() -> str:
    """A tokenizer of the 256 bytes plus ``<|endoftext|>`` (id 256): byte-level BPE with no merges."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet(), key=lambda c: _byte_of(c))
    vocab = {c: i for i, c in enumerate(alphabet)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([EOS])
    return tok.to_str()


@functools.lru_cache(maxsize=1)
def _byte_table() -> dict[str, int]:
    # GPT-2's byte ↔ printable character table, the one ByteLevel uses.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {chr(c): b for b, c in zip(bs, cs, strict=True)}


def _byte_of(c: str) -> int:
    return _byte_table()[c]


def tokenizer_json(path: str | None) -> tuple[str, int]:
    """The shared tokenizer and its separator id, on the driver.

    Args:
        path: a folder (or hub name) holding a fast tokenizer; None: ``byte_tokenizer_json``.

    Returns:
        ``(tokenizers JSON, eos id)``; the separator is the tokenizer's EOS (else BOS) token.

    Raises:
        ValueError: the tokenizer cannot be loaded, is not a fast tokenizer, or has no EOS/BOS token.
    """
    if path is None:
        text = byte_tokenizer_json()
        return text, _tokenizer(text).token_to_id(EOS)
    from transformers import AutoTokenizer

    from udfs.model_spec import resolve_path

    try:
        tok = AutoTokenizer.from_pretrained(resolve_path(path))
    except Exception as exc:
        raise ValueError(f"{path}: no tokenizer loads from it ({type(exc).__name__}: {exc})") from None
    if not getattr(tok, "is_fast", False):
        raise ValueError(f"{path}: {type(tok).__name__} is not a fast (tokenizers) tokenizer")
    eos = tok.eos_token_id if tok.eos_token_id is not None else tok.bos_token_id
    if eos is None:
        raise ValueError(f"{path}: the tokenizer has no EOS or BOS token to separate documents")
    return tok.backend_tokenizer.to_str(), int(eos)


@functools.lru_cache(maxsize=4)
def _tokenizer(text: str):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(text)
    tok.no_truncation()
    tok.no_padding()
    return tok


def vocab_size(text: str) -> int:
    return _tokenizer(text).get_vocab_size(with_added_tokens=True)


def encode(spec: LMSpec, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of each text (no special tokens added)."""
    return [
        e.ids for e in _tokenizer(spec.tokenizer_json).encode_batch(list(texts), add_special_tokens=False)
    ]


def stream_lengths(spec: LMSpec, texts: Sequence[str]) -> list[int]:
    """Tokens each document adds to a training stream: its separator and its tokens."""
    return [len(ids) + 1 for ids in encode(spec, texts)]


def pack(spec: LMSpec, texts: Sequence[str], n_tokens: int) -> np.ndarray:
    """The first ``n_tokens`` of the stream ``<eos> doc₁ <eos> doc₂ …`` in the order given.

    Raises:
        NotEnoughTokens: the texts hold fewer tokens.
    """
    out = np.empty(n_tokens, dtype=np.int64)
    pos = 0
    for ids in encode(spec, texts):
        take = min(len(ids) + 1, n_tokens - pos)
        out[pos : pos + take] = [spec.eos_id, *ids][:take]
        pos += take
        if pos == n_tokens:
            return out
    raise NotEnoughTokens(pos, n_tokens)


# -------------------------------------------------------------------------------------------- training


def lr_factor(step: int, steps: int, warmup_share: float, min_share: float) -> float:
    """Multiplier of the peak learning rate at ``step``: linear warm-up, then cosine to ``min_share``."""
    warm = max(1, math.ceil(warmup_share * steps)) if warmup_share > 0 else 0
    if step < warm:
        return (step + 1) / warm
    t = (step - warm) / max(1, steps - warm)
    return min_share + (1 - min_share) * 0.5 * (1 + math.cos(math.pi * t))


def build_model(spec: LMSpec):
    """A randomly initialised causal LM of the spec's size (seed the torch RNG first)."""
    vocab = vocab_size(spec.tokenizer_json)
    if spec.arch == "llama":
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = LlamaConfig(
            vocab_size=vocab,
            hidden_size=spec.n_embd,
            intermediate_size=4 * spec.n_embd,
            num_hidden_layers=spec.n_layer,
            num_attention_heads=spec.n_head,
            max_position_embeddings=spec.seq_len,
            bos_token_id=spec.eos_id,
            eos_token_id=spec.eos_id,
            tie_word_embeddings=True,
        )
        return LlamaForCausalLM(cfg)
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(
        vocab_size=vocab,
        n_positions=spec.seq_len,
        n_embd=spec.n_embd,
        n_layer=spec.n_layer,
        n_head=spec.n_head,
        n_inner=4 * spec.n_embd,
        # Each token is seen once: nothing to regularise, and dropout would add noise between seeds.
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=spec.eos_id,
        eos_token_id=spec.eos_id,
    )
    return GPT2LMHeadModel(cfg)


@dataclass
class Trained:
    """A trained model and how its training went."""

    model: object
    device: str
    steps: int
    tokens: int
    final_loss: float  # mean training loss (nats per token) over the last tenth of the steps
    seconds: float


def _autocast(device: str, dtype: str):
    import contextlib

    import torch

    if device.startswith("cuda") and dtype in ("auto", "bfloat16"):
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def train(spec: LMSpec, stream: np.ndarray, seed: int) -> Trained:
    """Train a fresh model on ``stream`` (``pack``'s output), every token once.

    The stream must hold whole steps (``spec.budget``); ``seed`` fixes the initialisation and the order of
    the sequences. Inside a Spark task torch uses the task's CPUs.

    Raises:
        ValueError: the stream is not a whole number of steps (at least one).
    """
    import torch

    n = len(stream)
    if n == 0 or n % spec.tokens_per_step:
        raise ValueError(
            f"the stream has {n:,} tokens, not a whole number of {spec.tokens_per_step:,}-token steps"
        )
    match_task_threads()
    device = pick_device(spec.device)
    start = time.perf_counter()
    cuda = device.startswith("cuda")
    # The whole budget goes to the device once (a run's budget is small by design): batches are then
    # indexed where they are used, with no host-to-device copy per step.
    seqs = torch.from_numpy(stream.reshape(-1, spec.seq_len)).to(device)
    steps = len(seqs) // spec.batch_size
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(seqs))).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = build_model(spec).to(device)
    # fused: one kernel for the whole update on CUDA instead of several per parameter group (CPU keeps the
    # default implementation, so CPU runs stay as they were).
    opt = torch.optim.AdamW(
        model.parameters(),
        lr=spec.lr,
        betas=(0.9, 0.95),
        weight_decay=spec.weight_decay,
        **({"fused": True} if cuda else {}),
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: lr_factor(s, steps, spec.warmup_share, spec.min_lr_share)
    )
    losses = []
    model.train()
    for step in range(steps):
        x = seqs[order[step * spec.batch_size : (step + 1) * spec.batch_size]]
        with _autocast(device, spec.dtype):
            # use_cache=False: a training step needs no KV cache, and building one costs two concatenations
            # per layer per step.
            logits = model(input_ids=x, use_cache=False).logits
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1).float(), x[:, 1:].flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        # Kept on the device: a .item() per step would make the host wait for every step to finish.
        losses.append(loss.detach())
    model.eval()
    tail = torch.stack(losses[-max(1, steps // 10) :]).tolist()
    return Trained(model, device, steps, n, float(np.mean(tail)), time.perf_counter() - start)


# ------------------------------------------------------------------------------------------ evaluation


def _windows(ids: list[int], first: int, n_ctx: int) -> list[tuple[list[int], int]]:
    """``(window, n_scored)`` scoring positions ``first..len(ids)-1`` once each, in strided windows (half a
    context of stride, so every scored token has at least half a context before it, or all of it)."""
    out = []
    for b, e, k in strided_windows(len(ids), n_ctx, max(1, n_ctx // 2)):
        lo = max(e - k, first)
        if e > lo:
            out.append((ids[b:e], e - lo))
    return out


def _nll(trained: Trained, spec: LMSpec, seqs: list[tuple[list[int], int]]) -> np.ndarray:
    """Summed NLL (nats) of each ``(ids, first scored position)``."""
    import torch

    windows = [
        (i, w, k) for i, (ids, first) in enumerate(seqs) for w, k in _windows(ids, first, spec.seq_len)
    ]
    if not windows:
        return np.zeros(len(seqs))
    with _autocast(trained.device, spec.dtype):
        nll = windowed_nll(
            trained.model, windows, len(seqs), spec.eos_id, spec.eval_tokens_per_batch, trained.device
        )
    return nll.to("cpu", torch.float64).numpy()


def text_nll(trained: Trained, spec: LMSpec, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each text's summed NLL (nats, every token scored after an ``<|endoftext|>``) and UTF-8 bytes."""
    seqs = [([spec.eos_id, *ids], 1) for ids in encode(spec, texts)]
    return _nll(trained, spec, seqs), np.array([len(t.encode("utf-8")) for t in texts], dtype=np.float64)


def continuation_nll(
    trained: Trained, spec: LMSpec, pairs: Sequence[tuple[str, str]]
) -> tuple[np.ndarray, np.ndarray]:
    """Summed NLL (nats) and UTF-8 bytes of each continuation given its prompt.

    The continuation follows the prompt after one space (none when the prompt ends in whitespace or is
    empty), and that space is part of the continuation, as lm-evaluation-harness scores choices.
    """
    conts = [(" " if p and not p[-1].isspace() else "") + c for p, c in pairs]
    prompts = encode(spec, [p for p, _ in pairs])
    cont_ids = encode(spec, conts)
    seqs = [([spec.eos_id, *p, *c], 1 + len(p)) for p, c in zip(prompts, cont_ids, strict=True)]
    return _nll(trained, spec, seqs), np.array([len(c.encode("utf-8")) for c in conts], dtype=np.float64)


def bits_per_byte(nll_nats: float, n_bytes: float) -> float:
    return float(nll_nats / (math.log(2) * n_bytes)) if n_bytes > 0 else float("nan")


# ---------------------------------------------------------------------------------------- benchmarks


@dataclass(frozen=True)
class Item:
    """One evaluation example (a ``ref.eval_items`` row)."""

    benchmark: str
    prompt: str
    answer: str
    choices: tuple[str, ...] | None = None
    answer_index: int | None = None


def score_items(trained: Trained, spec: LMSpec, items: Sequence[Item]) -> list[tuple[str, str, float, int]]:
    """Per benchmark: ``answer_bpb`` (Σ NLL of the gold answers given their prompts over their bytes) and,
    for benchmarks with choices, ``mc_accuracy`` (the gold choice has the lowest NLL per byte; a tie is
    wrong unless the gold choice comes first). Returns ``(benchmark, metric, value, n examples)``."""
    pairs = [(it.prompt, c) for it in items for c in (it.choices if it.choices else (it.answer,))]
    nll, n_bytes = continuation_nll(trained, spec, pairs)
    gold_nll: dict[str, list[float]] = {}
    correct: dict[str, list[int]] = {}
    pos = 0
    for it in items:
        k = len(it.choices) if it.choices else 1
        per_byte = nll[pos : pos + k] / n_bytes[pos : pos + k]
        g = it.answer_index if it.choices else 0
        acc = gold_nll.setdefault(it.benchmark, [0.0, 0.0, 0])
        acc[0] += nll[pos + g]
        acc[1] += n_bytes[pos + g]
        acc[2] += 1
        if it.choices:
            correct.setdefault(it.benchmark, []).append(int(int(np.argmin(per_byte)) == g))
        pos += k
    out = [(b, "answer_bpb", bits_per_byte(v[0], v[1]), v[2]) for b, v in sorted(gold_nll.items())]
    out += [(b, "mc_accuracy", float(np.mean(v)), len(v)) for b, v in sorted(correct.items())]
    return out


def score_texts(trained: Trained, spec: LMSpec, texts: Sequence[str]) -> tuple[float, int]:
    """Bits per byte over all ``texts`` (token-weighted: Σ NLL / Σ bytes) and how many there are."""
    nll, n_bytes = text_nll(trained, spec, texts)
    return bits_per_byte(float(nll.sum()), float(n_bytes.sum())), len(texts)
