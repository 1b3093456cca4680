"""Model entries as executors need them (``ModelSpec``), and the driver-side check that an entry fits its
role before any Spark work (``check_model``): config, architecture and tokenizer, no weights loaded.
The runners that load and run them are ``udfs.models``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

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


def is_local(path: str) -> bool:
    """Whether ``path`` is a local path (else a hub name, which transformers may fetch)."""
    return path.startswith((".", "/", "~")) or os.path.exists(path)


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
    local = is_local(path)
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
    if kind == "causal_lm":
        start_token(tok, spec)
    return {
        "model_type": mtype,
        "max_length": model_max_length(spec, cfg, tok),
        "num_labels": getattr(cfg, "num_labels", None),
    }


def start_token(tokenizer, spec: ModelSpec) -> int:
    """The id perplexity scoring puts before each text: BOS, else EOS (see ``udfs.models.PerplexityRunner``).

    Raises:
        ModelError: the tokenizer has neither, in one line naming the role and the model.
    """
    for tid in (tokenizer.bos_token_id, tokenizer.eos_token_id):
        if tid is not None:
            return tid
    raise ModelError(
        f"{spec.role} ({spec.id}): the tokenizer of {spec.path} has neither a BOS nor an EOS token, so the "
        "first token of a text could not be scored; perplexity needs one of them to start each text"
    )


def model_max_length(spec: ModelSpec, cfg, tok) -> int:
    """Tokens per forward pass: the entry's ``max_length``, else the smallest maximum the config and the
    tokenizer give (512 when neither says)."""
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
