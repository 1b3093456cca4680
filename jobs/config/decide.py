"""Profile sections for the decisions: ``aggregate`` (domains, weights, BETR, the page classifier), ``select``
and ``export``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from jobs.config.base import Strict
from jobs.config.train import ProxyModelConf


class FastTextConf(Strict):
    """fastText's supervised settings for one method's page classifier. Defaults: fastText's own, with word
    bigrams (wordNgrams 2), as the perplexity-correlations paper trains its page classifier."""

    dim: int = Field(100, ge=1, description="word vector size")
    lr: float = Field(0.1, gt=0, description="learning rate")
    ws: int = Field(5, ge=1, description="context window (used by fastText's unsupervised modes only)")
    epoch: int = Field(5, ge=1, description="passes over the training pages")
    min_count: int = Field(1, ge=1, description="words seen fewer times are dropped")
    word_ngrams: int = Field(2, ge=1, description="word n-grams (2: unigrams and bigrams)")
    bucket: int = Field(2_000_000, ge=1, description="hash buckets of the n-grams (fastText's default)")
    threads: int = Field(
        1, ge=1, description="training threads; 1 reads the file in its seeded order (fits can still differ)"
    )


class BetrFastTextConf(FastTextConf):
    """fastText for BETR, with the BETR paper's settings: wordNgrams 2, dim 128, lr 0.03, ws 10, minCount 5,
    5 epochs."""

    dim: int = Field(128, ge=1, description="word vector size")
    lr: float = Field(0.03, gt=0, description="learning rate")
    ws: int = Field(10, ge=1, description="context window (used by fastText's unsupervised modes only)")
    min_count: int = Field(5, ge=1, description="words seen fewer times are dropped")


class FastTextMethods(Strict):
    """Each method's fastText settings."""

    betr: BetrFastTextConf = Field(default_factory=BetrFastTextConf)
    pplcorr: FastTextConf = Field(default_factory=FastTextConf)


class BigramConf(Strict):
    """The page classifier shared by BETR and the perplexity-correlation page step: fastText (each paper's
    settings, trained on the driver from the bounded sample, scored on executors) or the distributed Spark ML
    stand-in (tokenizer → unigrams+bigrams → hashing TF → logistic regression)."""

    backend: Literal["fasttext", "spark_lr"] = Field(
        "fasttext", description="fasttext (the papers') or spark_lr (Spark ML logistic regression)"
    )
    fasttext: FastTextMethods = Field(default_factory=FastTextMethods)
    num_features: int = Field(1 << 18, ge=16, description="spark_lr: hashing TF buckets")
    max_iter: int = Field(50, ge=1, description="spark_lr: L-BFGS iterations of the logistic regression")
    reg_param: float = Field(1e-4, ge=0, description="spark_lr: L2 regularization")
    min_token_length: int = Field(
        1, ge=1, description="spark_lr: shorter tokens are dropped before the bigrams"
    )
    max_docs_per_class: int | None = Field(
        100_000, ge=1, description="training pages per label, a seeded sample of each class (null: all)"
    )
    seed: int = Field(0, description="seeds the training sample, any split and fastText")

    @model_validator(mode="after")
    def _bounded_on_the_driver(self) -> BigramConf:
        if self.backend == "fasttext" and self.max_docs_per_class is None:
            raise ValueError(
                "max_docs_per_class: fastText trains on the driver, so its training sample must be bounded; "
                "set a number of pages per label (or backend: spark_lr to train on the executors)"
            )
        return self


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
    keep_ratio: float | None = Field(
        None,
        gt=0,
        le=1,
        description="share of the pool's tokens the corpus keeps (tau = share / keep_ratio); null: "
        "select.token_budget / silver.documents' tokens; set, it must agree with that within 5%",
    )


class LightgbmConf(Strict):
    """Meta-rater's regressor weights → proxy loss (LightGBM). The defaults are the Meta-rater code's
    (``pipeline/step3_train_regressor.py``); the tree-size settings are LightGBM's own defaults, which
    that code leaves alone."""

    boosting: Literal["gbdt", "dart"] = Field(
        "gbdt", description="LightGBM boosting type (dart runs every round: LightGBM cannot stop it early)"
    )
    learning_rate: float = Field(0.01, gt=0, le=1, description="shrinkage per boosting round")
    num_boost_round: int = Field(1000, ge=1, description="boosting rounds (early stopping may stop sooner)")
    early_stopping_rounds: int | None = Field(
        5,
        ge=1,
        description="stop when neither l1 nor l2 on the validation proposals improved for this many rounds "
        "(null: every round)",
    )
    valid_share: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="the last share of the proposals (by id, as drawn) held out: early stopping and the "
        "held-out Spearman; the regressor trains on the rest",
    )
    seed: int = Field(42, description="LightGBM's seed")
    num_leaves: int = Field(31, ge=2, description="leaves per tree")
    min_child_samples: int = Field(20, ge=1, description="proxy results a leaf needs (min_data_in_leaf)")
    min_data_in_bin: int = Field(3, ge=1, description="values a histogram bin needs")


class WeightsConf(Strict):
    """aggregate_weights: Meta-rater's learned signal weights → gold.rater_weights.

    Defaults follow Meta-rater (Zhuang et al. 2025): the four PRRC labels, 256 proposals, top 15 %,
    10^6 candidates, the mean of the best 128.
    """

    signals: list[str] = Field(
        default_factory=lambda: [
            "professionalism_label",
            "readability_label",
            "reasoning_label",
            "cleanliness_label",
        ],
        description="PRRC labels (argmax class) or dimensions (expected class), scores.quality columns, "
        "or `<layer>.<table>.<column>` of any per-document score table; combined into Q",
    )
    classes: dict[str, int] = Field(
        default_factory=dict,
        description="signal → k for a class output (argmax over k classes): normalized as "
        "argmax / (k − 1) · 5 instead of min–max (PRRC *_label signals are 6-class already)",
    )
    proposals: int = Field(256, ge=2, description="Dirichlet(1) weight vectors proposed for proxy runs")
    top_share: float = Field(0.15, gt=0, le=1, description="each proposal selects the top share by Q")
    candidates: int = Field(1_000_000, ge=128, description="Dirichlet draws scored by the regressor")
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
    lightgbm: LightgbmConf = Field(default_factory=LightgbmConf)
    seed: int = Field(0, description="proposals and candidates")

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

    @field_validator("classes")
    @classmethod
    def _classes(cls, classes: dict[str, int], info) -> dict[str, int]:
        signals = info.data.get("signals") or []
        unknown = sorted(s for s in classes if s not in signals)
        if unknown:
            raise ValueError(f"{unknown} not in signals")
        small = sorted(s for s, k in classes.items() if k < 2)
        if small:
            raise ValueError(f"a class output has k ≥ 2 classes: {small}")
        return classes

    @field_validator("best")
    @classmethod
    def _best_of_candidates(cls, best: int, info) -> int:
        candidates = info.data.get("candidates", best)
        if best > candidates:
            raise ValueError(f"best = {best} is more than candidates = {candidates}")
        return best


class BetrConf(Strict):
    """aggregate_docs, BETR: the ranked sample's scores → positives → page classifier → the whole pool."""

    mode: Literal["aware", "blind"] = Field(
        "aware", description="aware: targets are eval_benchmarks (balanced); blind: every other benchmark"
    )
    eval_benchmarks: list[str] | None = Field(None, description="the evaluation suite (null: all)")
    combine: Literal["min_rank", "per_benchmark"] = Field(
        "min_rank",
        description="min_rank: best rank over the balanced targets of every chosen benchmark (the paper); "
        "per_benchmark: best position in each benchmark's own order",
    )
    positive_share: float = Field(0.1, gt=0, lt=1, description="top share of ranked docs taken as positives")
    negatives_per_positive: float | None = Field(
        None, gt=0, description="training negatives per positive, a seeded sample (null: every other one)"
    )
    keep_token_share: float | None = Field(
        None,
        gt=0,
        le=1,
        description="share of the pool's tokens the threshold keeps; null: select.token_budget / "
        "silver.documents' tokens; set, it must agree with that within 5%",
    )
    heldout_share: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="ranked sample kept out of training to report the classifier on (0: none)",
    )
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


ExportFormat = Literal["jsonl.gz", "parquet", "tokens"]


class TokensExportConf(Strict):
    """export.tokens: the tokenized export (``format: tokens``), Megatron indexed-dataset shards made with a
    Hugging Face tokenizer. Defaults follow Megatron-LM's ``tools/preprocess_data.py --append-eod``."""

    tokenizer: str | None = Field(
        None,
        description="Hugging Face tokenizer: local folder, package:<module> or hub name (needed by tokens)",
    )
    revision: str = "main"
    trust_remote_code: bool = False
    add_special_tokens: bool = Field(
        True,
        description="the tokenizer's own special tokens (e.g. a BOS) on each document, as Megatron-LM's "
        "tokenizer wrapper adds them; false: none, as NeMo's text_to_ids. The EOS after each is always added",
    )
    shard_tokens: int = Field(
        100_000_000, ge=1, description="target tokens per shard, EOS included (documents are never split)"
    )


class ExportConf(Strict):
    """export: a selection → sharded files + manifest, one folder per strategy and format, replaced
    atomically."""

    path: str | None = Field(
        None,
        description="local or mounted output folder every executor can write, one subfolder per strategy "
        "(default: `export` beside the warehouse)",
    )
    format: list[ExportFormat] = Field(
        ["jsonl.gz"],
        description="one format or a list, written in one run: jsonl.gz or parquet (<path>/<strategy>/), "
        "tokens (Megatron .bin/.idx, <path>/tokens/<strategy>/)",
    )
    shard_mb: float = Field(
        64.0, gt=0, description="target uncompressed shard size (MiB of JSON lines, also for parquet)"
    )
    strategy: str | None = Field(None, description="which strategy's selection (null: every one)")
    tokens: TokensExportConf = Field(default_factory=TokensExportConf)

    @field_validator("format", mode="before")
    @classmethod
    def _one_or_a_list(cls, value):
        # `format: jsonl.gz` (the original shape) is a list of one.
        return [value] if isinstance(value, str) else value

    @field_validator("format")
    @classmethod
    def _formats(cls, formats: list[str]) -> list[str]:
        if not formats:
            raise ValueError("name at least one format")
        dupes = sorted({f for f in formats if formats.count(f) > 1})
        if dupes:
            raise ValueError(f"formats repeated: {dupes}")
        if "jsonl.gz" in formats and "parquet" in formats:
            raise ValueError("jsonl.gz and parquet both write <path>/<strategy>/; pick one of them")
        return formats

    @model_validator(mode="after")
    def _tokenizer_named(self) -> ExportConf:
        if "tokens" in self.format and not self.tokens.tokenizer:
            raise ValueError(
                "format tokens needs export.tokens.tokenizer (a tokenizer folder, package:<module> or a hub "
                "name)"
            )
        return self
