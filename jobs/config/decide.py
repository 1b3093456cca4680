"""Profile sections for the decisions: ``aggregate`` (domains, weights, BETR, the page classifier), ``select``
and ``export``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from jobs.config.base import Strict
from jobs.config.train import ProxyModelConf


class BigramConf(Strict):
    """The fastText-like page classifier (Spark ML: tokenizer → unigrams+bigrams → hashing TF → logistic
    regression), shared by BETR and the perplexity-correlation page step."""

    num_features: int = Field(1 << 18, ge=16, description="hashing TF buckets")
    max_iter: int = Field(50, ge=1, description="L-BFGS iterations of the logistic regression")
    reg_param: float = Field(1e-4, ge=0, description="L2 regularization")
    min_token_length: int = Field(1, ge=1, description="shorter tokens are dropped before the bigrams")
    max_docs_per_class: int | None = Field(
        100_000, ge=1, description="training pages per label, a seeded sample of each class (null: all)"
    )
    seed: int = Field(0, description="seeds the train/held-out split and the per-class sample")


class DomainsConf(Strict):
    """aggregate_domains: perplexity correlations per domain → gold.domain_correlations."""

    benchmarks: list[str] | None = Field(
        None,
        min_length=1,
        description="benchmark group whose mean error is y (null: every benchmark in ref.model_scores)",
    )
    estimator: Literal["spearmanr", "sign_cdf", "sign_sign", "sign", "product"] = "spearmanr"
    projection: Literal["linear", "l2"] = "linear"
    min_docs: int = Field(5, ge=1, description="domains with fewer sampled documents are left out")
    keep_ratio: float = Field(
        0.5, gt=0, le=1, description="share of the pool's tokens the corpus keeps (tau = share / keep_ratio)"
    )


class WeightsConf(Strict):
    """aggregate_weights: Meta-rater's learned signal weights → gold.rater_weights."""

    signals: list[str] = Field(
        default_factory=lambda: ["professionalism", "readability", "reasoning", "cleanliness"],
        description="PRRC dimensions and/or scores.quality columns combined into Q",
    )
    proposals: int = Field(32, ge=2, description="Dirichlet(1) weight vectors proposed for proxy runs")
    top_share: float = Field(0.15, gt=0, le=1, description="each proposal selects the top share by Q")
    candidates: int = Field(100_000, ge=128, description="Dirichlet draws scored by the regressor")
    best: int = Field(128, ge=1, description="w* = mean of the best candidates")
    proxy: Literal["ngram", "train", "table"] = Field(
        "ngram",
        description="ngram: the local bigram LM stand-in; train: a small causal LM trained per proposal "
        "(proxy_model); table: read proxy_results",
    )
    proxy_results: str | None = Field(
        None, description="proxy=table: CSV/JSONL with weights_id, val_loss (real proxy training runs)"
    )
    proxy_mu: float = Field(
        100.0, gt=0, description="ngram proxy: smoothing mass of the bigram LM toward its unigram LM"
    )
    proxy_model: ProxyModelConf = Field(
        default_factory=ProxyModelConf, description="proxy=train: the model and its tokens (seed: proxy_seed)"
    )
    proxy_seed: int = Field(0, description="proxy=train: one seed for every proposal's model")
    proxy_chunk: int | None = Field(
        None,
        ge=1,
        description="proxy=train: proposals trained per gated commit (null: Spark's default parallelism)",
    )
    cv_folds: int = Field(5, ge=2, description="folds of the fit's held-out Spearman (≤ one per proposal)")
    seed: int = Field(0, description="proposals, candidates and the regressor")

    @field_validator("proxy", mode="before")
    @classmethod
    def _builtin_is_ngram(cls, proxy):
        # ``builtin`` was the n-gram proxy's name before real proxy training existed; profiles keep working.
        return "ngram" if proxy == "builtin" else proxy

    @field_validator("proxy_model")
    @classmethod
    def _budget(cls, model: ProxyModelConf) -> ProxyModelConf:
        if model.train_tokens < model.tokens_per_step:
            raise ValueError(
                f"train_tokens {model.train_tokens} is less than one step (batch_size × seq_len = "
                f"{model.tokens_per_step})"
            )
        return model

    @field_validator("signals")
    @classmethod
    def _signals(cls, signals: list[str]) -> list[str]:
        if not signals:
            raise ValueError("name at least one signal")
        dupes = sorted({s for s in signals if signals.count(s) > 1})
        if dupes:
            raise ValueError(f"signals repeated: {dupes}")
        return signals

    @field_validator("best")
    @classmethod
    def _best_of_candidates(cls, best: int, info) -> int:
        candidates = info.data.get("candidates", best)
        if best > candidates:
            raise ValueError(f"best = {best} is more than candidates = {candidates}")
        return best


class BetrConf(Strict):
    """aggregate_docs, BETR: best rank → positives → bigram classifier → threshold on the full pool."""

    mode: Literal["aware", "blind"] = Field(
        "aware", description="aware: targets are eval_benchmarks (balanced); blind: every other benchmark"
    )
    eval_benchmarks: list[str] | None = Field(None, description="the evaluation suite (null: all)")
    positive_share: float = Field(0.1, gt=0, lt=1, description="top share of scored docs taken as positives")
    keep_token_share: float = Field(0.1, gt=0, le=1, description="token share the threshold keeps")
    heldout_share: float = Field(0.2, gt=0, lt=1, description="scored sample held out to pick the threshold")
    method: Literal["betr", "rds"] = Field("betr", description="which scores.similarity method ranks")


class AggregateConf(Strict):
    """The aggregate_* stages: from score tables to decisions."""

    domains: DomainsConf = Field(default_factory=DomainsConf)
    weights: WeightsConf = Field(default_factory=WeightsConf)
    betr: BetrConf = Field(default_factory=BetrConf)
    classifier: BigramConf = Field(default_factory=BigramConf)


class SelectConf(Strict):
    """select: documents per strategy to a token budget → gold.selection.

    Documents are taken by score (desc, ties by doc_id) while the running token sum stays within the budget:
    the pick stops at the first document that would overflow it. With ``max_domain_share``, documents past
    their domain's cap are skipped and the pick goes on with the other domains.
    """

    strategies: list[Literal["betr", "pplcorr", "metarater", "rds", "random", "blend"]] = Field(
        default_factory=lambda: ["betr", "pplcorr", "metarater", "rds", "random"],
        description="strategies to select for; one with no rows in gold.doc_scores is skipped",
    )
    token_budget: int = Field(1_000_000, ge=1, description="tokens (silver n_tokens_est) per strategy")
    max_domain_share: float | None = Field(
        None,
        gt=0,
        le=1,
        description="per-domain cap as a share of the budget, floor(share × budget) tokens (null: no cap)",
    )
    blend: dict[str, float] = Field(
        default_factory=dict,
        description="blend: strategy → weight (≥ 0, normalized to sum 1) over per-strategy percentile ranks",
    )
    seed: int = Field(0, description="random baseline")

    @field_validator("blend")
    @classmethod
    def _blend_weights(cls, blend: dict[str, float]) -> dict[str, float]:
        import math

        known = ("betr", "pplcorr", "metarater", "rds", "random")
        unknown = sorted(k for k in blend if k not in known)
        if unknown:
            raise ValueError(f"unknown strategies {unknown}; blend one or more of {list(known)}")
        bad = sorted(k for k, w in blend.items() if not math.isfinite(w) or w < 0)
        if bad:
            got = ", ".join(f"{k}={blend[k]}" for k in bad)
            raise ValueError(f"weights must be finite and ≥ 0; got {got}")
        if blend and sum(blend.values()) <= 0:
            raise ValueError("weights sum to 0; give at least one strategy a positive weight")
        return blend


class ExportConf(Strict):
    """export: a selection → sharded files + manifest, one folder per strategy, replaced atomically."""

    path: str | None = Field(
        None,
        description="local or mounted output folder every executor can write, one subfolder per strategy "
        "(default: `export` beside the warehouse)",
    )
    format: Literal["jsonl.gz", "parquet"] = "jsonl.gz"
    shard_mb: float = Field(
        64.0, gt=0, description="target uncompressed shard size (MiB of JSON lines, also for parquet)"
    )
    strategy: str | None = Field(None, description="which strategy's selection (null: every one)")
