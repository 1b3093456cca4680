"""Model runners: one shape for every scoring role, run on executors inside ``mapInPandas``.

A runner holds a lazily loaded tokenizer + model (``udfs.model_spec.ModelSpec``) and turns a ``pd.Series``
of texts into a DataFrame of scores with ``predict_batch``. The Spark side (``jobs.scoring``) calls
``get_runner`` once per batch; the runner is cached per Python worker, so a worker loads each model once
(Spark reuses Python workers). Devices and batching are ``udfs.model_batching``.

How every runner batches: tokenize the whole Arrow batch, sort the pieces (windows, chunks) by length,
and cut batches so that ``padded length × rows ≤ tokens_per_batch``. Sorting keeps padding small; the
token budget keeps memory flat whatever the length mix. Everything runs under ``torch.inference_mode``,
in bf16 (or fp16 on pre-Ampere cards) on CUDA and fp32 on CPU unless the profile says otherwise.

Long documents are never silently cut:
- perplexity scores the whole text with strided windows (context = the model's max length, each window
  scoring only tokens not scored before, with up to ``max_length - stride`` tokens of left context);
- classifiers and embedders use ``long_text``: ``chunk_mean`` (split into max-length chunks, average the
  class probabilities / embeddings weighted by chunk tokens) or ``head_tail`` (the first quarter of the
  budget from the start and the rest from the end, Sun et al. 2019; the one policy that drops tokens,
  chosen explicitly in conf).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from udfs.model_batching import (
    fuse_activations,
    match_task_threads,
    pad,
    pick_device,
    pick_dtype,
    strided_windows,
    token_batches,
    windowed_nll,
)
from udfs.model_spec import ModelSpec, is_local, model_max_length, resolve_path, start_token

log = logging.getLogger("corpuslake.models")


@dataclass
class Runner:
    """A model for one role, loaded on first use. Subclasses implement ``_auto_class`` and ``_predict``."""

    spec: ModelSpec
    kind: str = ""
    device: str | None = None
    model: object = field(default=None, repr=False)
    tokenizer: object = field(default=None, repr=False)
    max_length: int = 0

    def load(self) -> Runner:
        """Load tokenizer and weights (safetensors only) onto the chosen device, in eval mode."""
        if self.model is not None:
            return self
        from transformers import AutoConfig, AutoTokenizer

        path = resolve_path(self.spec.path)
        local = is_local(path)
        kw = dict(
            revision=self.spec.revision, trust_remote_code=self.spec.trust_remote_code, local_files_only=local
        )
        self.device = pick_device(self.spec.device)
        match_task_threads()
        dtype = pick_dtype(self.spec.dtype, self.device, self.spec.gpu_dtype)
        # One "Loading weights" bar per model per worker would bury the stage's own progress lines.
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        cfg = AutoConfig.from_pretrained(path, **kw)
        self.tokenizer = AutoTokenizer.from_pretrained(path, **kw)
        model = self._auto_class().from_pretrained(path, dtype=dtype, use_safetensors=True, **kw)
        self.model = model.to(self.device).eval()
        fuse_activations(self.model)
        self.max_length = model_max_length(self.spec, cfg, self.tokenizer)
        if self.tokenizer.pad_token_id is None:
            # Causal LMs often ship without a pad token; padded positions are masked out anyway.
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self._pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self._prefix, self._suffix = _special_tokens(self.tokenizer)
        log.info("loaded %s on %s (%s), max_length %d", self.spec.key, self.device, dtype, self.max_length)
        return self

    def _auto_class(self):
        raise NotImplementedError

    @property
    def budget(self) -> int:
        """Padded tokens per forward pass on the loaded device."""
        if str(self.device).startswith("cpu"):
            return min(self.spec.tokens_per_batch, self.spec.cpu_tokens_per_batch)
        return self.spec.tokens_per_batch

    def encode(self, texts: pd.Series) -> list[list[int]]:
        """Token ids of each whole text, without special tokens."""
        enc = self.tokenizer(
            [t if isinstance(t, str) else "" for t in texts],
            add_special_tokens=False,
            return_attention_mask=False,
            verbose=False,
        )
        return enc["input_ids"]

    def predict_batch(self, texts: pd.Series) -> pd.DataFrame:
        """Scores for ``texts``, one row per text in input order."""
        import torch

        self.load()
        with torch.inference_mode():
            return self._predict(texts)

    def _predict(self, texts: pd.Series) -> pd.DataFrame:
        raise NotImplementedError

    def _pieces(self, ids: list[list[int]]) -> list[tuple[int, list[int], float]]:
        """(text index, model input with special tokens, weight) for each text under ``long_text``."""
        room = max(1, self.max_length - len(self._prefix) - len(self._suffix))
        out = []
        for i, seq in enumerate(ids):
            if len(seq) <= room:
                out.append((i, self._prefix + seq + self._suffix, float(max(1, len(seq)))))
            elif self.spec.long_text == "head_tail":
                head = room // 4
                out.append(
                    (i, self._prefix + seq[:head] + seq[len(seq) - (room - head) :] + self._suffix, 1.0)
                )
            else:  # chunk_mean
                for s in range(0, len(seq), room):
                    chunk = seq[s : s + room]
                    out.append((i, self._prefix + chunk + self._suffix, float(len(chunk))))
        return out

    def _run_pieces(self, pieces, forward) -> list[np.ndarray]:
        """Apply ``forward(ids, mask) -> [rows, d]`` to all pieces in token-budget batches."""
        results: list[np.ndarray | None] = [None] * len(pieces)
        for batch in token_batches([len(p[1]) for p in pieces], self.budget):
            ids, mask = pad([pieces[j][1] for j in batch], self._pad_id)
            out = forward(ids.to(self.device), mask.to(self.device)).float().cpu().numpy()
            for r, j in enumerate(batch):
                results[j] = out[r]
        return results

    @staticmethod
    def _weighted_mean(n: int, pieces, values: list[np.ndarray]) -> np.ndarray:
        """Per text: the mean of its pieces' values weighted by piece tokens."""
        dim = values[0].shape[-1]
        acc = np.zeros((n, dim), dtype=np.float64)
        wsum = np.zeros(n, dtype=np.float64)
        for (i, _, w), v in zip(pieces, values, strict=True):
            acc[i] += w * v
            wsum[i] += w
        return acc / np.maximum(wsum, 1e-12)[:, None]


def _special_tokens(tok) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after a text ([CLS] … [SEP], <s> …, or nothing)."""
    plain = tok("a", add_special_tokens=False)["input_ids"]
    full = tok("a", add_special_tokens=True)["input_ids"]
    for s in range(len(full) - len(plain) + 1):
        if full[s : s + len(plain)] == plain:
            return list(full[:s]), list(full[s + len(plain) :])
    return [], []


class PerplexityRunner(Runner):
    """Causal LM → ``n_tokens, n_bytes, nll_sum, bpb`` per text over the whole text (strided windows).

    Every token of the text is predicted, so the NLL covers all ``n_bytes`` UTF-8 bytes the bpb divides
    by: the runner prepends the tokenizer's BOS token, or its EOS token when it has no BOS (Qwen- and
    OLMo-style tokenizers; a text then reads as the document after ``<eos>``, as in packed pre-training
    and as the perplexity-correlations scoring effectively computes). ``n_tokens`` = the text's tokens.
    A tokenizer with neither is refused (``udfs.model_spec.check_model``): its first token could only
    be context, and its bytes would then be counted without being scored.
    """

    columns = ("n_tokens", "n_bytes", "nll_sum", "bpb")

    def _auto_class(self):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM

    def _predict(self, texts: pd.Series) -> pd.DataFrame:
        ids = self.encode(texts)
        start = start_token(self.tokenizer, self.spec)
        stride = self.spec.stride or max(1, self.max_length // 2)
        stride = min(stride, self.max_length - 1) if self.max_length > 1 else 1
        windows = []  # (text index, window ids, n_targets)
        for i, seq in enumerate(ids):
            full = [start, *seq]
            for b, e, k in strided_windows(len(full), self.max_length, stride):
                windows.append((i, full[b:e], k))
        nll = windowed_nll(self.model, windows, len(ids), self._pad_id, self.budget, self.device)
        nll = nll.cpu().numpy()
        n_tokens = np.array([len(s) for s in ids], dtype=np.int64)
        n_bytes = np.array(
            [len(t.encode("utf-8")) if isinstance(t, str) else 0 for t in texts], dtype=np.int64
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            bpb = nll / (math.log(2) * n_bytes)
        return pd.DataFrame({"n_tokens": n_tokens, "n_bytes": n_bytes, "nll_sum": nll, "bpb": bpb})


class ClassifierRunner(Runner):
    """Sequence classifier → ``expected`` (Σ class·p, 0–5), ``label`` (argmax) and ``n_tokens``.

    A 1-output regressor's output is taken as the score itself (and its rounded value as the label).
    """

    def _auto_class(self):
        from transformers import AutoModelForSequenceClassification

        return AutoModelForSequenceClassification

    def _predict(self, texts: pd.Series) -> pd.DataFrame:
        import torch

        ids = self.encode(texts)
        pieces = self._pieces(ids)
        regress = self.model.config.num_labels == 1

        def forward(inp, mask):
            logits = self.model(input_ids=inp, attention_mask=mask).logits.float()
            return logits if regress else torch.softmax(logits, dim=-1)

        probs = self._weighted_mean(len(ids), pieces, self._run_pieces(pieces, forward))
        if regress:
            expected = probs[:, 0]
            label = np.clip(np.rint(expected), 0, 5).astype(np.int32)
        else:
            classes = np.arange(probs.shape[1], dtype=np.float64)
            expected = probs @ classes
            label = probs.argmax(axis=1).astype(np.int32)
        return pd.DataFrame(
            {
                "expected": expected,
                "label": label,
                "n_tokens": np.array([len(s) for s in ids], dtype=np.int64),
            }
        )


def _l2(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


class EmbeddingRunner(Runner):
    """Sentence embedder → L2-normalized ``embedding`` (mean or CLS pooling of the last hidden layer)."""

    def _auto_class(self):
        from transformers import AutoModel

        return AutoModel

    def _pooling(self) -> str:
        if self.spec.pooling:
            return self.spec.pooling
        cfg = Path(resolve_path(self.spec.path)) / "1_Pooling" / "config.json"
        if cfg.is_file():
            import json

            if json.loads(cfg.read_text()).get("pooling_mode_cls_token"):
                return "cls"
        return "mean"

    def pool(self, hidden, mask):
        """Pool ``[rows, tokens, d]`` hidden states over non-pad tokens."""
        if self._pooling() == "cls":
            return hidden[:, 0]
        m = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * m).sum(1) / m.sum(1).clamp(min=1)

    def hidden(self, inp, mask):
        """The last hidden layer, ``[rows, tokens, d]``."""
        return self.model(input_ids=inp, attention_mask=mask).last_hidden_state

    def _predict(self, texts: pd.Series) -> pd.DataFrame:
        ids = self.encode(texts)
        pieces = self._pieces(ids)

        def forward(inp, mask):
            return self.pool(self.hidden(inp, mask).float(), mask)

        # Each piece is normalized before averaging so a long document's chunks count by tokens, not norm.
        per_piece = [_l2(v) for v in self._run_pieces(pieces, forward)]
        emb = _l2(self._weighted_mean(len(ids), pieces, per_piece))
        return pd.DataFrame(
            {
                "embedding": [e.astype(np.float32) for e in emb],
                "n_tokens": np.array([len(s) for s in ids], dtype=np.int64),
            }
        )


class RdsRunner(EmbeddingRunner):
    """RDS+ encoder: a causal LM's last hidden layer, position-weighted mean pooled, L2-normalized.

    e = Σ_t (t / Σ_s s) · h_t over the non-pad tokens t = 1..n (Ivison et al. 2025): later tokens, which
    have seen more of the text, weigh more. A chat record is embedded as its chat-templated text
    (``model_texts``), as RDS+ embeds instruction data.
    """

    def model_texts(self, batch: pd.DataFrame) -> pd.Series:
        """What the encoder reads per row: a chat record's ``messages`` through the tokenizer's chat
        template (``udfs.chat.ChatTemplate``: the plain template when it has none), else ``text``."""
        from udfs.chat import ChatTemplate

        self.load()
        if "messages" not in batch.columns:
            return batch["text"]
        tpl = ChatTemplate(self.tokenizer)
        return pd.Series(
            [
                t if m is None else tpl.render(m)
                for t, m in zip(batch["text"], batch["messages"], strict=True)
            ],
            index=batch.index,
            dtype=object,
        )

    def _auto_class(self):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM

    def pool(self, hidden, mask):
        import torch

        pos = torch.cumsum(mask, dim=1).to(hidden.dtype) * mask.to(hidden.dtype)  # 1..n, 0 on padding
        w = pos / pos.sum(1, keepdim=True).clamp(min=1)
        return (hidden * w.unsqueeze(-1)).sum(1)

    def hidden(self, inp, mask):
        return self.model(input_ids=inp, attention_mask=mask, output_hidden_states=True).hidden_states[-1]


RUNNERS = {
    "causal_lm": PerplexityRunner,
    "classifier": ClassifierRunner,
    "embedder": EmbeddingRunner,
    "rds_encoder": RdsRunner,
}

# Loaded models per Python worker, least recently used first. Stages run one model at a time (the PRRC
# stage its four raters together), and keeping more large models resident would exhaust GPU memory, so
# loading one more than ``capacity`` evicts the oldest.
_LOADED: dict[tuple[ModelSpec, str], Runner] = {}


def get_runner(spec: ModelSpec, kind: str, capacity: int = 1) -> Runner:
    """The worker's runner for ``spec`` as ``kind``, loaded on first use, keeping ``capacity`` models."""
    key = (spec, kind)
    if key in _LOADED:
        _LOADED[key] = _LOADED.pop(key)  # most recently used last
        return _LOADED[key]
    while len(_LOADED) >= capacity:
        _LOADED.pop(next(iter(_LOADED)))
        _free_cuda()
    _LOADED[key] = RUNNERS[kind](spec, kind).load()
    return _LOADED[key]


def _free_cuda() -> None:
    import gc

    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except Exception:
        pass
