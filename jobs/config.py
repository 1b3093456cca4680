"""Profiles: one pydantic model validates a YAML profile, read once at a job's entry point.

A profile is a YAML file under ``conf/``. ``load_conf`` reads it, applies ``--set key=value`` overrides
and validates the result. Every error names the file and the dotted key, so a user can fix the profile
without reading a stack trace.
"""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator


class ConfError(ValueError):
    """A profile could not be read or validated; the message names the file and the key."""


class _Strict(BaseModel):
    # Unknown keys are typos far more often than intent: refuse them.
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class SparkConf(_Strict):
    """How the SparkSession is built when no session is active (spark-submit / Databricks reuse theirs)."""

    master: str = "local[*]"
    app_name: str = "corpuslake"
    shuffle_partitions: int = Field(8, ge=1)
    ui: bool = False
    progress: bool = Field(True, description="Spark's console progress bar")
    log_level: str = "WARN"
    conf: dict[str, str] = Field(default_factory=dict, description="extra spark.* settings")
    delta_packages: str | None = Field(
        None, description="Maven coordinates added to spark.jars.packages when engine is delta-spark"
    )


class ProgressConf(_Strict):
    """corpuslake's own progress lines (documents, rate, ETA per stage), printed by the driver to stderr."""

    enabled: Literal["auto"] | bool = Field(
        "auto", description="auto: only when stderr is a terminal (so test and CI logs stay quiet)"
    )
    interval_s: float = Field(10.0, gt=0, description="seconds between lines; shorter stages print none")

    def on(self) -> bool:
        if self.enabled == "auto":
            import sys

            return sys.stderr.isatty()
        return bool(self.enabled)


class StorageConf(_Strict):
    """Where the lakehouse lives and which Delta engine writes it."""

    engine: Literal["auto", "embedded", "delta-spark"] = "auto"
    warehouse: str
    storage_options: dict[str, str] = Field(default_factory=dict, description="delta-rs object-store options")


class FieldMap(_Strict):
    """Which input field holds what; every other field goes into the ``meta`` JSON column.

    A name is a top-level key or a dotted path into nested objects (``metadata.url``; list items by index,
    ``a.0.b``), in JSONL and Parquet alike. WARC/ARC records have fixed fields and ignore the map.
    """

    text: str = "text"
    url: str | None = "url"
    id: str | None = "id"

    @field_validator("text", "url", "id")
    @classmethod
    def _path(cls, path: str | None) -> str | None:
        if path is not None and (not path.strip() or "" in path.split(".")):
            raise ValueError(
                f"{path!r} is not a field path: write a key or dotted keys (metadata.url), "
                "with no empty part (no leading, trailing or double dot)"
            )
        return path


class InputConf(_Strict):
    """One raw input: a path or glob in a known format."""

    name: str = Field(min_length=1, description="source name stored in bronze.documents.source")
    path: str = Field(min_length=1)
    format: Literal["auto", "jsonl", "parquet", "warc"] = "auto"
    fields: FieldMap = Field(default_factory=FieldMap)


class HtmlConf(_Strict):
    """How HTML pages of WARC/ARC responses become text."""

    extractor: Literal["resiliparse", "trafilatura", "plain"] = Field(
        "resiliparse",
        description="resiliparse: main content, as DCLM; trafilatura: main content, as FineWeb; "
        "plain: every visible text block (menus and footers too)",
    )
    keep_title: bool = Field(True, description="the page <title> as the first line of the text")


class IngestConf(_Strict):
    """Ingest limits and inputs."""

    inputs: list[InputConf] = Field(min_length=1)
    max_doc_bytes: int = Field(1_000_000, ge=1)
    max_line_bytes: int | None = Field(
        None, ge=1, description="longest raw record read into memory; default 4 x max_doc_bytes + 64 KiB"
    )
    split_bytes: int = Field(
        128 * 1024 * 1024, ge=1024, description="plain JSONL files are split at this size"
    )
    snippet_chars: int = Field(200, ge=0)
    batch_rows: int = Field(2048, ge=1)
    html: HtmlConf = Field(default_factory=HtmlConf)

    @property
    def line_limit(self) -> int:
        return self.max_line_bytes or 4 * self.max_doc_bytes + 65536


class BenchmarkInput(_Strict):
    """Benchmark example files (JSON lines: plain, ``.gz`` or ``.zst``): one target text per example.

    The text joins ``text_fields`` (dotted paths, see ``udfs.benchmarks``), or a ``preset``'s fields; with
    neither, the preset whose layout each file's first record has, else question/choices/answer/support.
    """

    path: str = Field(min_length=1)
    preset: str | None = Field(None, description="a layout from udfs.benchmarks.PRESETS, or auto")
    text_fields: list[str] | None = Field(None, min_length=1)
    benchmark: str | None = Field(None, description="name for every example (else benchmark_field, file)")
    benchmark_field: str = "benchmark"
    split: str | None = Field(None, description="split for every example (else split_field, file name, test)")
    split_field: str | None = "split"
    id_field: str | None = Field(None, description="example id field (default: the preset's, else id)")

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, preset: str | None) -> str | None:
        from udfs.benchmarks import PRESETS

        if preset is not None and preset != "auto" and preset not in PRESETS:
            raise ValueError(f"unknown preset {preset!r}; known presets: auto, {', '.join(PRESETS)}")
        return preset

    @field_validator("text_fields")
    @classmethod
    def _paths(cls, fields: list[str] | None, info) -> list[str] | None:
        from udfs.benchmarks import check_path

        if fields is None:
            return None
        if info.data.get("preset") not in (None, "auto"):
            raise ValueError(f"name a preset ({info.data['preset']}) or text_fields, not both")
        return [check_path(f) for f in fields]


class RefsConf(_Strict):
    """Reference inputs loaded by ``load_refs``."""

    benchmarks: list[BenchmarkInput] = Field(default_factory=list)
    model_scores: list[ModelScoresInput] = Field(default_factory=list)


class RuleConf(_Strict):
    """One heuristic rule of the clean stage: a name from ``udfs.quality_rules.RULES`` and threshold
    overrides."""

    name: str
    params: dict[str, Any] = Field(default_factory=dict)


def _default_rules() -> list[RuleConf]:
    from udfs.quality_rules import DEFAULT_RULES

    return [RuleConf(name=name) for name, _ in DEFAULT_RULES]


class NearDedupConf(_Strict):
    """MinHash LSH near-duplicate removal."""

    enabled: bool = True
    num_perm: int = Field(128, ge=8)
    # 20 x 6: a pair at Jaccard 0.8 becomes a candidate with probability 1 - (1 - 0.8**6)**20 = 0.998.
    bands: int = Field(20, ge=1)
    rows: int = Field(6, ge=1)
    ngram: int = Field(5, ge=1)
    threshold: float = Field(0.8, gt=0, le=1)
    max_bucket: int = Field(1000, ge=2, description="larger LSH buckets are linked as a star, not all pairs")
    seed: int = 42
    verify: Literal["exact", "estimate"] = "exact"

    @field_validator("rows")
    @classmethod
    def _fits(cls, rows: int, info) -> int:
        bands, num_perm = info.data.get("bands", 16), info.data.get("num_perm", 128)
        if bands * rows > num_perm:
            raise ValueError(f"bands x rows = {bands * rows} is more than num_perm = {num_perm}")
        return rows


class DecontamConf(_Strict):
    """N-gram decontamination against ref.benchmarks."""

    enabled: bool = True
    ngram: int = Field(13, ge=3)
    action: Literal["drop", "flag"] = "drop"


class CleanConf(_Strict):
    """The clean stage: normalization, language ID, rules, dedup, decontamination."""

    allowed_langs: list[str] = Field(
        default_factory=lambda: ["en"], min_length=1, description="languages to keep (udfs.lang.LABELS)"
    )
    min_lang_score: float = Field(0.5, ge=0, le=1, description="below it, a document's language is unknown")
    unknown_lang: Literal["drop", "keep"] = Field(
        "drop", description="what becomes of a document of unknown language that the rules keep"
    )
    rules: list[RuleConf] = Field(default_factory=_default_rules)
    exact_dedup: bool = True
    near_dedup: NearDedupConf = Field(default_factory=NearDedupConf)
    decontamination: DecontamConf = Field(default_factory=DecontamConf)

    @field_validator("allowed_langs")
    @classmethod
    def _known_langs(cls, langs: list[str]) -> list[str]:
        from udfs.lang import LABELS, TO_ISO_639_1, UNKNOWN

        for lang in langs:
            if lang == UNKNOWN:
                raise ValueError(f"{UNKNOWN!r} is not a language: set clean.unknown_lang: keep instead")
            if lang in TO_ISO_639_1:
                raise ValueError(f"{lang!r} is labelled {TO_ISO_639_1[lang]!r} (ISO 639-1): allow that")
            if lang not in LABELS:
                raise ValueError(
                    f"{lang!r} is not a label the language identifier gives: ISO 639-1 codes (en, ja, zh, …) "
                    "or, for languages without one, ISO 639-3 codes (see udfs/lang.py)"
                )
        return langs

    @field_validator("rules")
    @classmethod
    def _known_rules(cls, rules: list[RuleConf]) -> list[RuleConf]:
        from udfs.quality_rules import validate_rules

        validate_rules([(r.name, r.params) for r in rules])  # ValueError names the unknown rule or param
        return rules

    def rule_params(self) -> list[tuple[str, dict]]:
        """Rules with their defaults filled in, in order."""
        from udfs.quality_rules import validate_rules

        return validate_rules([(r.name, r.params) for r in self.rules])


class SampleConf(_Strict):
    """The bundled sample corpus generator (demo and tests)."""

    out: str = "data/sample"
    docs: int = Field(5000, ge=1)
    seed: int = 0
    models: str | None = Field(
        None, description="where `corpuslake demo` builds its demo models (jobs/demo/models.py); null: none"
    )


class GpuConf(_Strict):
    """GPU settings for scoring stages on a cluster."""

    enabled: bool = Field(False, description="request GPUs for scoring tasks (stage-level scheduling)")
    per_task: float = Field(1.0, gt=0, description="GPUs per scoring task (0.5: two tasks share a card)")
    dtype: Literal["bf16", "fp16", "fp32"] = Field("bf16", description="models whose dtype is auto, on CUDA")


class ModelConf(_Strict):
    """One model of a scoring role: where it is and how to run it (see ``udfs.model_spec.ModelSpec``)."""

    id: str | None = Field(None, description="id stored in score tables; default the folder or hub name")
    path: str = Field(min_length=1, description="local folder, package:<module>, or hub name org/model")
    revision: str = "main"
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    max_length: int | None = Field(None, ge=8, description="default: the model's maximum")
    tokens_per_batch: int = Field(16384, ge=64, description="padded tokens per forward pass on a GPU")
    cpu_tokens_per_batch: int = Field(
        2048, ge=64, description="cap on CPU, where big batches outgrow the cache (see bench/score.py)"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    long_text: Literal["chunk_mean", "head_tail"] = Field(
        "chunk_mean", description="classifiers/embedders: how texts longer than max_length are scored"
    )
    stride: int | None = Field(None, ge=1, description="perplexity: tokens scored per window (default half)")
    pooling: Literal["mean", "cls"] | None = None
    trust_remote_code: bool = False

    @property
    def model_id(self) -> str:
        return self.id or self.path.rstrip("/").split("/")[-1].split(":")[-1]

    def spec(self, role: str, gpu: GpuConf | None = None):
        """The executor-side ``ModelSpec`` of this entry."""
        from udfs.model_spec import ModelSpec

        data = self.model_dump(exclude={"id"})
        gpu_dtype = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}[(gpu or GpuConf()).dtype]
        return ModelSpec(role=role, id=self.model_id, gpu_dtype=gpu_dtype, **data)


class PrrcConf(_Strict):
    """Meta-rater's four PRRC raters (6-class 0-5 classifiers or 1-output regressors)."""

    professionalism: ModelConf | None = None
    readability: ModelConf | None = None
    reasoning: ModelConf | None = None
    cleanliness: ModelConf | None = None

    @property
    def raters(self) -> dict[str, ModelConf]:
        return {d: getattr(self, d) for d in type(self).model_fields if getattr(self, d) is not None}


class StratifiedSample(_Strict):
    """At most ``per_domain`` documents per domain, chosen by a seeded hash of doc_id (stable on reruns)."""

    per_domain: int | None = Field(None, ge=1, description="null: every document")
    seed: int = 0


class PerplexityConf(_Strict):
    """The perplexity pool: causal LMs whose per-domain bits-per-byte feed the correlation stage."""

    pool: list[ModelConf] = Field(default_factory=list)
    sample: StratifiedSample = Field(default_factory=StratifiedSample)

    @field_validator("pool")
    @classmethod
    def _unique_ids(cls, pool: list[ModelConf]) -> list[ModelConf]:
        ids = [m.model_id for m in pool]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"model ids must be unique in the pool; repeated: {dupes} (set id:)")
        return pool


class SimilarityConf(_Strict):
    """BETR: embed benchmark targets and documents with a sentence embedder; ranks and max cosine."""

    embedder: ModelConf | None = None
    top_k: int | None = Field(
        1000, ge=1, description="ranks are kept for each target's top_k documents (null: all)"
    )
    benchmarks: list[str] | None = Field(None, description="benchmarks used as targets (null: all)")
    splits: list[str] | None = Field(None, description="benchmark splits used as targets (null: all)")
    persist_embeddings: bool = Field(
        True, description="keep document embeddings in scores.embeddings (resumable, reusable)"
    )
    block_targets: int = Field(1024, ge=1, description="targets per matrix-product block on executors")


class RdsConf(_Strict):
    """RDS+: position-weighted mean pooled hidden states of a causal LM, max cosine per task."""

    encoder: ModelConf | None = None


class ScoreConf(_Strict):
    """The model scoring stages (score_prrc, score_perplexity, score_similarity)."""

    chunk_docs: int = Field(
        100_000, ge=1, description="documents per commit: a killed run loses at most one chunk's work"
    )
    batch_rows: int = Field(
        2048, ge=1, description="rows per Arrow batch handed to a runner (its length-sorting window)"
    )
    partitions: int | None = Field(None, ge=1, description="repartition documents to spread model work")
    prrc: PrrcConf = Field(default_factory=PrrcConf)
    perplexity: PerplexityConf = Field(default_factory=PerplexityConf)
    similarity: SimilarityConf = Field(default_factory=SimilarityConf)
    rds: RdsConf = Field(default_factory=RdsConf)


class ModelScoresInput(_Strict):
    """Per-model benchmark accuracies (CSV with a header, or JSONL): model_id, benchmark, accuracy."""

    path: str = Field(min_length=1, description="file or glob")
    format: Literal["auto", "csv", "jsonl"] = Field(
        "auto", description="auto: .csv files are CSV with a header row, anything else JSON lines"
    )
    model_field: str = Field("model_id", description="field with the model id (the pool's model ids)")
    benchmark_field: str = "benchmark"
    accuracy_field: str = Field("accuracy", description="field with the accuracy, 0-1")


class BigramConf(_Strict):
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


class DomainsConf(_Strict):
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


class WeightsConf(_Strict):
    """aggregate_weights: Meta-rater's learned signal weights → gold.rater_weights."""

    signals: list[str] = Field(
        default_factory=lambda: ["professionalism", "readability", "reasoning", "cleanliness"],
        description="PRRC dimensions and/or scores.quality columns combined into Q",
    )
    proposals: int = Field(32, ge=2, description="Dirichlet(1) weight vectors proposed for proxy runs")
    top_share: float = Field(0.15, gt=0, le=1, description="each proposal selects the top share by Q")
    candidates: int = Field(100_000, ge=128, description="Dirichlet draws scored by the regressor")
    best: int = Field(128, ge=1, description="w* = mean of the best candidates")
    proxy: Literal["builtin", "table"] = Field(
        "builtin", description="builtin: the local n-gram LM stand-in; table: read proxy_results"
    )
    proxy_results: str | None = Field(
        None, description="proxy=table: CSV/JSONL with weights_id, val_loss (real proxy training runs)"
    )
    proxy_mu: float = Field(
        100.0, gt=0, description="builtin proxy: smoothing mass of the bigram LM toward its unigram LM"
    )
    cv_folds: int = Field(5, ge=2, description="folds of the fit's held-out Spearman (≤ one per proposal)")
    seed: int = Field(0, description="proposals, candidates and the regressor")

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


class BetrConf(_Strict):
    """aggregate_docs, BETR: best rank → positives → bigram classifier → threshold on the full pool."""

    mode: Literal["aware", "blind"] = Field(
        "aware", description="aware: targets are eval_benchmarks (balanced); blind: every other benchmark"
    )
    eval_benchmarks: list[str] | None = Field(None, description="the evaluation suite (null: all)")
    positive_share: float = Field(0.1, gt=0, lt=1, description="top share of scored docs taken as positives")
    keep_token_share: float = Field(0.1, gt=0, le=1, description="token share the threshold keeps")
    heldout_share: float = Field(0.2, gt=0, lt=1, description="scored sample held out to pick the threshold")
    method: Literal["betr", "rds"] = Field("betr", description="which scores.similarity method ranks")


class AggregateConf(_Strict):
    """The aggregate_* stages: from score tables to decisions."""

    domains: DomainsConf = Field(default_factory=DomainsConf)
    weights: WeightsConf = Field(default_factory=WeightsConf)
    betr: BetrConf = Field(default_factory=BetrConf)
    classifier: BigramConf = Field(default_factory=BigramConf)


class SelectConf(_Strict):
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


class ExportConf(_Strict):
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


class Conf(_Strict):
    """A whole profile."""

    profile: str = "local"
    spark: SparkConf = Field(default_factory=SparkConf)
    progress: ProgressConf = Field(default_factory=ProgressConf)
    storage: StorageConf
    ingest: IngestConf
    refs: RefsConf = Field(default_factory=RefsConf)
    clean: CleanConf = Field(default_factory=CleanConf)
    sample: SampleConf = Field(default_factory=SampleConf)
    gpu: GpuConf = Field(default_factory=GpuConf)
    score: ScoreConf = Field(default_factory=ScoreConf)
    aggregate: AggregateConf = Field(default_factory=AggregateConf)
    select: SelectConf = Field(default_factory=SelectConf)
    export: ExportConf = Field(default_factory=ExportConf)
    source_file: str | None = Field(None, exclude=True, description="the YAML file this came from")

    @field_validator("profile")
    @classmethod
    def _profile_name(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be empty")
        return v


def _parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise ConfError(f"--set {item!r}: expected key=value, e.g. --set ingest.max_doc_bytes=200000")
    key, raw = item.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfError(f"--set {item!r}: empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


# Maps whose keys themselves contain dots (spark.sql.shuffle.partitions): the rest of the key is one name.
_FREEFORM_MAPS = {("spark", "conf"), ("storage", "storage_options")}


def _apply_override(data: dict, parts: list[str], value: Any, item: str) -> None:
    for n in range(len(parts) - 1):
        if tuple(parts[: n + 1]) in _FREEFORM_MAPS:
            parts = [*parts[: n + 1], ".".join(parts[n + 1 :])]
            if not isinstance(value, str):
                value = str(value).lower() if isinstance(value, bool) else str(value)
            break
    node: Any = data
    for i, part in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfError(f"--set {item}: {'.'.join(parts[: i + 1])} is not an index of the list")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise ConfError(f"--set {item}: {'.'.join(parts[:i])} is a value, not a section")


def _declared_type(parts: list[str]) -> Any:
    """The type ``Conf`` declares at a dotted key (list items by index), None where no model says."""
    node: Any = Conf
    for part in parts:
        if get_origin(node) in (Union, types.UnionType):  # Optional[X]: X
            args = [a for a in get_args(node) if a is not type(None)]
            node = args[0] if len(args) == 1 else None
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(part)
            node = field.annotation if field is not None else None
        elif get_origin(node) is list and part.isdigit():
            node = get_args(node)[0]
        else:
            return None
    return node


def _list_value(parts: list[str], value: Any) -> Any:
    """A comma list given on the command line (``--set clean.allowed_langs=en,ja``) for a list setting."""
    declared = _declared_type(parts)
    if get_origin(declared) in (Union, types.UnionType):
        declared = next((a for a in get_args(declared) if get_origin(a) is list), None)
    if isinstance(value, str) and get_origin(declared) is list:
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def _key_of(loc: tuple) -> str:
    out = ""
    for p in loc:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def load_conf(path: str | Path, overrides: list[str] | None = None) -> Conf:
    """Read, override and validate a profile.

    Args:
        path: the YAML profile, e.g. ``conf/local.yaml``.
        overrides: ``key=value`` strings (dotted keys, list indexes as numbers, values parsed as YAML; a
            list setting also takes a comma list, ``clean.allowed_langs=en,ja``).

    Returns:
        The validated ``Conf``.

    Raises:
        ConfError: the file is missing or unreadable, a key is unknown, a value has the wrong type or a
            required key is missing. The message names the file and every offending key.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfError(
            f"{path}: profile not found (pass --conf with an existing YAML file, e.g. conf/local.yaml)"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfError(f"{path}: the top level must be a mapping of sections, got {type(data).__name__}")
    for item in overrides or []:
        parts, value = _parse_override(item)
        _apply_override(data, parts, _list_value(parts, value), item)
    try:
        conf = Conf.model_validate(data)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = _key_of(err["loc"]) or "(top level)"
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            if err["type"] == "list_type":
                msg += " (in YAML: [a, b]; on the command line: --set key=a,b)"
            lines.append(f"{path}: {key}: {msg}")
        raise ConfError("\n".join(lines)) from None
    conf.source_file = str(path)
    return conf
