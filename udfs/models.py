"""Model runners: one shape for every scoring role, run on executors inside ``mapInPandas``.

A runner holds a lazily loaded tokenizer + model and turns a ``pd.Series`` of texts into a DataFrame of
scores with ``predict_batch``. The Spark side (``jobs.scoring``) calls ``get_runner`` once per batch; the
runner is cached per Python worker, so a worker loads each model once (Spark reuses Python workers).

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
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger("corpuslake.models")

KINDS = ("causal_lm", "classifier", "embedder", "rds_encoder")


class ModelError(ValueError):
    """A model entry cannot be used for its role: missing path, wrong architecture, no safetensors."""


@dataclass(frozen=True)
class ModelSpec:
    """One model entry of the profile, as executors need it (plain, picklable).

    Args:
        role: the conf key it came from (``score.perplexity.pool[0]``), for messages.
        id: the id stored in score tables.
        path: a local folder, ``package:<module>`` (a module with ``get_model_path()``) or a hub name.
        revision: hub revision (branch, tag or commit); recorded with every score.
        dtype: ``auto`` (bf16 on CUDA, fp32 on CPU), ``float32``, ``bfloat16`` or ``float16``.
        max_length: tokens per forward pass; default the model's own maximum.
        tokens_per_batch: padded tokens per forward pass on a GPU.
        cpu_tokens_per_batch: the cap on CPU, where activations that outgrow the cache cost more than the
            batching saves (measured by ``bench/score.py``: 2048 runs ~1.4x faster than 16384).
        device: ``auto``, ``cpu`` or ``cuda``; without a GPU, ``auto`` and ``cuda`` fall back to CPU.
        long_text: ``chunk_mean`` or ``head_tail`` (classifiers and embedders).
        stride: perplexity: new tokens scored per window; default half the context.
        pooling: embedders: ``mean`` or ``cls`` (read from a sentence-transformers folder when present).
        trust_remote_code: off unless the profile turns it on.
        gpu_dtype: what ``auto`` means on CUDA (the profile's ``gpu.dtype``).
    """

    role: str
    id: str
    path: str
    revision: str = "main"
    dtype: str = "auto"
    max_length: int | None = None
    tokens_per_batch: int = 16384
    cpu_tokens_per_batch: int = 2048
    device: str = "auto"
    long_text: str = "chunk_mean"
    stride: int | None = None
    pooling: str | None = None
    trust_remote_code: bool = False
    gpu_dtype: str = "bfloat16"

    @property
    def key(self) -> str:
        """What score tables record: ``id@revision``."""
        return f"{self.id}@{self.revision}"


def resolve_path(path: str) -> str:
    """``package:<module>`` → the module's bundled model folder; anything else unchanged."""
    if path.startswith("package:"):
        import importlib

        name = path.split(":", 1)[1]
        try:
            mod = importlib.import_module(name)
        except ImportError as exc:
            raise ModelError(f"{path}: cannot import {name} ({exc}); is the package installed?") from None
        if not hasattr(mod, "get_model_path"):
            raise ModelError(f"{path}: module {name} has no get_model_path()")
        return str(mod.get_model_path())
    return os.path.expanduser(path)


def _is_local(path: str) -> bool:
    return path.startswith((".", "/", "~")) or os.path.exists(path)


# ---------------------------------------------------------------------------------------------- preflight


def check_model(spec: ModelSpec, kind: str) -> dict:
    """Check on the driver, before any Spark work, that ``spec`` can serve as ``kind``.

    Loads the config and tokenizer only (no weights). Returns facts the stage logs (model type,
    parameters' max length, labels).

    Raises:
        ModelError: with the role, the path and what is wrong, in one line.
    """
    from transformers import AutoConfig, AutoTokenizer
    from transformers.models.auto import modeling_auto as ma

    where = f"{spec.role} ({spec.id})"
    path = resolve_path(spec.path)
    local = _is_local(path)
    if local:
        p = Path(path)
        if not p.is_dir():
            raise ModelError(f"{where}: model folder {path} does not exist")
        if not (p / "config.json").is_file():
            raise ModelError(f"{where}: {path} has no config.json; it is not a transformers model folder")
        if not any(p.glob("*.safetensors")):
            raise ModelError(
                f"{where}: {path} has no *.safetensors weights (pickled .bin weights are not loaded)"
            )
    try:
        cfg = AutoConfig.from_pretrained(
            path, revision=spec.revision, trust_remote_code=spec.trust_remote_code, local_files_only=local
        )
    except Exception as exc:  # hub errors, bad JSON, unknown model_type: all mean "not usable"
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        hint = "" if local else " (hub unreachable? point path at a local folder or pre-download it)"
        raise ModelError(f"{where}: cannot load the config of {path}: {first}{hint}") from None
    mtype = cfg.model_type
    arch = ",".join(cfg.architectures or []) or mtype
    if kind in ("causal_lm", "rds_encoder"):
        heads = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")
        if mtype not in ma.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES or (
            cfg.architectures and not any(a.endswith(heads) for a in cfg.architectures)
        ):
            raise ModelError(f"{where}: {path} is a {arch} (model_type {mtype}); expected a causal LM")
    elif kind == "classifier":
        if mtype not in ma.MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES:
            raise ModelError(f"{where}: {path} is a {arch}; expected a sequence classifier")
        if cfg.architectures and not any("SequenceClassification" in a for a in cfg.architectures):
            raise ModelError(
                f"{where}: {path} is a {arch} without a classification head; "
                "expected a sequence classifier (*ForSequenceClassification)"
            )
        if cfg.num_labels not in (1, 6):
            raise ModelError(
                f"{where}: {path} has {cfg.num_labels} labels; a PRRC rater has 6 classes (0-5) or 1 output"
            )
    elif kind == "embedder":
        if mtype not in ma.MODEL_MAPPING_NAMES:
            raise ModelError(f"{where}: {path} is a {arch}; expected an encoder with hidden states")
    else:
        raise ValueError(f"unknown model kind {kind!r}")
    try:
        tok = AutoTokenizer.from_pretrained(
            path, revision=spec.revision, trust_remote_code=spec.trust_remote_code, local_files_only=local
        )
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"{where}: cannot load the tokenizer of {path}: {first}") from None
    # transformers builds an empty-vocabulary tokenizer when the files are missing; every text would
    # then score as a run of [UNK]. A tokenizer much smaller than the embedding matrix means exactly that.
    vocab = getattr(cfg, "vocab_size", None) or getattr(getattr(cfg, "text_config", None), "vocab_size", None)
    if isinstance(vocab, int) and vocab > 0 and len(tok) < vocab // 2:
        raise ModelError(
            f"{where}: the tokenizer of {path} has {len(tok)} tokens for a model vocabulary of {vocab}; "
            "tokenizer files missing or not this model's"
        )
    return {
        "model_type": mtype,
        "max_length": _max_length(spec, cfg, tok),
        "num_labels": getattr(cfg, "num_labels", None),
    }


def _max_length(spec: ModelSpec, cfg, tok) -> int:
    if spec.max_length:
        return spec.max_length
    cands = [getattr(cfg, k, None) for k in ("max_position_embeddings", "n_positions", "max_sequence_length")]
    cands = [c for c in cands if isinstance(c, int) and c > 0]
    tmax = getattr(tok, "model_max_length", None)
    if isinstance(tmax, int) and 0 < tmax < 10**7:
        cands.append(tmax)
    if not cands:
        return 512
    return min(cands)


# ---------------------------------------------------------------------------------------------- device


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


def _match_task_threads() -> None:
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

    n = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), n), dtype=torch.long)
    for r, s in enumerate(seqs):
        ids[r, : len(s)] = torch.tensor(s, dtype=torch.long)
        mask[r, : len(s)] = 1
    return ids, mask


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


def windowed_nll(model, windows, n_owners: int, pad_id: int, tokens_per_batch: int, device=None):
    """Summed next-token NLL (nats) per owner over windows ``(owner, ids, n_targets)``.

    A window scores its last ``n_targets`` tokens, the rest of it being context (see ``strided_windows``);
    windows run in ``token_batches`` of right-padded rows. The sums stay on ``device`` (``index_add``, so a
    batch costs no host sync) in float64, because a long text sums many thousands of token NLLs.

    Returns:
        A float64 tensor of ``n_owners`` sums on ``device``.
    """
    import torch

    nll = torch.zeros(n_owners, dtype=torch.float64, device=device)
    with torch.inference_mode():
        for batch in token_batches([len(w[1]) for w in windows], tokens_per_batch):
            seqs = [windows[j][1] for j in batch]
            inp, mask = pad(seqs, pad_id)
            # Position t predicts token t+1; only each window's last n_targets tokens are scored, so the
            # log-softmax runs over the target positions alone (not the context or the padding).
            target = torch.zeros(inp.shape[0], inp.shape[1] - 1, dtype=torch.bool)
            owner = torch.empty(inp.shape[0], dtype=torch.long)
            for r, j in enumerate(batch):
                n, k = len(seqs[r]), windows[j][2]
                target[r, n - 1 - k : n - 1] = True
                owner[r] = windows[j][0]
            inp, mask, target = inp.to(device), mask.to(device), target.to(device)
            logits = model(input_ids=inp, attention_mask=mask).logits[:, :-1]
            tok_nll = torch.nn.functional.cross_entropy(
                logits[target].float(), inp[:, 1:][target], reduction="none"
            )
            rows = owner.to(device).unsqueeze(1).expand_as(target)[target]
            nll.index_add_(0, rows, tok_nll.double())
    return nll


# ---------------------------------------------------------------------------------------------- runners


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
        import torch
        from transformers import AutoConfig, AutoTokenizer

        path = resolve_path(self.spec.path)
        local = _is_local(path)
        kw = dict(
            revision=self.spec.revision, trust_remote_code=self.spec.trust_remote_code, local_files_only=local
        )
        self.device = pick_device(self.spec.device)
        _match_task_threads()
        dtype = pick_dtype(self.spec.dtype, self.device, self.spec.gpu_dtype)
        # One "Loading weights" bar per model per worker would bury the stage's own progress lines.
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        cfg = AutoConfig.from_pretrained(path, **kw)
        self.tokenizer = AutoTokenizer.from_pretrained(path, **kw)
        model = self._auto_class().from_pretrained(path, dtype=dtype, use_safetensors=True, **kw)
        self.model = model.to(self.device).eval()
        self.max_length = _max_length(self.spec, cfg, self.tokenizer)
        if self.tokenizer.pad_token_id is None:
            # Causal LMs often ship without a pad token; padded positions are masked out anyway.
            self.tokenizer.pad_token = self.tokenizer.eos_token or self.tokenizer.unk_token
        self._pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self._prefix, self._suffix = _special_tokens(self.tokenizer)
        torch.set_grad_enabled(False)
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

    A BOS token (when the tokenizer has one) is prepended so every text token is predicted; without one
    the first token is context only and ``n_tokens`` counts the predicted tokens.
    """

    columns = ("n_tokens", "n_bytes", "nll_sum", "bpb")

    def _auto_class(self):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM

    def _predict(self, texts: pd.Series) -> pd.DataFrame:
        ids = self.encode(texts)
        bos = self.tokenizer.bos_token_id
        stride = self.spec.stride or max(1, self.max_length // 2)
        stride = min(stride, self.max_length - 1) if self.max_length > 1 else 1
        windows = []  # (text index, window ids, n_targets)
        for i, seq in enumerate(ids):
            full = ([bos] + seq) if bos is not None else seq
            for b, e, k in strided_windows(len(full), self.max_length, stride):
                windows.append((i, full[b:e], k))
        nll = windowed_nll(self.model, windows, len(ids), self._pad_id, self.budget, self.device)
        nll = nll.cpu().numpy()
        n_tokens = np.array([len(s) if bos is not None else max(0, len(s) - 1) for s in ids], dtype=np.int64)
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
    have seen more of the text, weigh more.
    """

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
