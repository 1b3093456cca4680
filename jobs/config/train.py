"""Profile sections for the small causal LMs trained from scratch: Meta-rater's proxy models
(``aggregate.weights.proxy_model``) and the selection-effect experiment (``evaluate``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from jobs.config.base import Strict

Strategy = Literal["betr", "pplcorr", "metarater", "rds", "random", "blend"]


class LMConf(Strict):
    """A small causal LM trained from scratch on a fixed token budget (``udfs.lm_train``).

    Every model a run trains gets the same tokenizer, size, steps, schedule and token count; only the data
    and the seed differ. Steps = train_tokens / (batch_size × seq_len).
    """

    arch: Literal["gpt2", "llama"] = Field(
        "gpt2", description="transformers architecture (config built here)"
    )
    tokenizer: str | None = Field(
        None,
        description="a local folder (or hub name) with a fast tokenizer; null: bytes (256 byte tokens + "
        "<|endoftext|>), which needs no training data",
    )
    n_layer: int = Field(2, ge=1)
    n_embd: int = Field(128, ge=8, description="hidden size")
    n_head: int = Field(4, ge=1)
    seq_len: int = Field(128, ge=8, description="context length of training sequences and evaluation windows")
    batch_size: int = Field(16, ge=1, description="sequences per optimizer step")
    train_tokens: int | None = Field(
        None, ge=1, description="tokens each model trains on, rounded down to whole steps"
    )
    lr: float = Field(3e-3, gt=0, description="peak learning rate (AdamW, betas 0.9/0.95)")
    warmup_share: float = Field(0.1, ge=0, lt=1, description="linear warm-up over this share of the steps")
    min_lr_share: float = Field(0.1, ge=0, le=1, description="cosine decay to this share of the peak")
    weight_decay: float = Field(0.01, ge=0)
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="auto: the task's GPU when it has one")
    dtype: Literal["auto", "float32", "bfloat16"] = Field(
        "auto", description="auto: bf16 autocast on CUDA, fp32 on CPU"
    )
    eval_tokens_per_batch: int = Field(4096, ge=64, description="padded tokens per evaluation forward pass")

    @model_validator(mode="after")
    def _heads(self) -> LMConf:
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd {self.n_embd} is not a multiple of n_head {self.n_head}")
        return self

    @property
    def tokens_per_step(self) -> int:
        return self.batch_size * self.seq_len


class ProxyModelConf(LMConf):
    """Meta-rater's proxy model (``aggregate.weights.proxy_model``): every proposal's model trains on the
    same fixed budget."""

    train_tokens: int = Field(65_536, ge=1, description="tokens each proxy trains on, in whole steps")


class EvalModelConf(LMConf):
    """The evaluate stage's model (``evaluate.model``)."""

    train_tokens: int | None = Field(
        None, ge=1, description="tokens each model trains on, in whole steps (null: the smallest arm's)"
    )


class EvaluateConf(Strict):
    """evaluate: the same small LM trained from scratch on each strategy's selection and on random, at equal
    tokens over several seeds, measured on the benchmarks' evaluation split → gold.evaluation."""

    strategies: list[Strategy] | None = Field(
        None,
        description="strategies whose gold.selection is trained on (null: select.strategies); random is "
        "always an arm, re-drawn per seed",
    )
    seeds: list[int] = Field(
        default_factory=lambda: [0, 1, 2],
        min_length=3,
        description="one model per arm and seed: initialisation, data order and the random arm's draw",
    )
    model: EvalModelConf = Field(default_factory=EvalModelConf)
    heldout_docs: int = Field(
        200, ge=1, description="general web documents of silver held out from every arm, scored in bpb"
    )
    heldout_seed: int = Field(0, description="seeds the held-out sample")
    max_items: int | None = Field(
        None, ge=1, description="evaluation examples per benchmark, a seeded sample (null: all)"
    )
    confidence: float = Field(0.95, gt=0, lt=1, description="level of the paired differences' t intervals")

    @field_validator("seeds")
    @classmethod
    def _unique(cls, seeds: list[int]) -> list[int]:
        dupes = sorted({s for s in seeds if seeds.count(s) > 1})
        if dupes:
            raise ValueError(f"seeds repeated: {dupes}")
        return seeds
