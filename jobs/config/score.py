"""The ``score`` section: the models of each scoring role and how scoring runs."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from jobs.config.base import Strict
from jobs.config.runtime import GpuConf


class ModelConf(Strict):
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


class PrrcConf(Strict):
    """Meta-rater's four PRRC raters (6-class 0-5 classifiers or 1-output regressors)."""

    professionalism: ModelConf | None = None
    readability: ModelConf | None = None
    reasoning: ModelConf | None = None
    cleanliness: ModelConf | None = None

    @property
    def raters(self) -> dict[str, ModelConf]:
        return {d: getattr(self, d) for d in type(self).model_fields if getattr(self, d) is not None}


class StratifiedSample(Strict):
    """At most ``per_domain`` documents per domain, chosen by a seeded hash of doc_id (stable on reruns)."""

    per_domain: int | None = Field(None, ge=1, description="null: every document")
    seed: int = 0


class PerplexityConf(Strict):
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


class SimilarityConf(Strict):
    """BETR: embed benchmark targets and a sample of the documents with a sentence embedder; ranks within the
    sample and max cosine (RDS+ embeds every document)."""

    embedder: ModelConf | None = None
    top_k: int | None = Field(
        1000, ge=1, description="ranks are kept for each target's top_k documents (null: all)"
    )
    benchmarks: list[str] | None = Field(None, description="benchmarks used as targets (null: all)")
    persist_embeddings: bool = Field(
        True, description="keep document embeddings in scores.embeddings (resumable, reusable)"
    )
    block_targets: int = Field(1024, ge=1, description="targets per matrix-product block on executors")
    sample_docs: int | None = Field(
        1_000_000,
        ge=1,
        description="BETR embeds and ranks a seeded sample of about this many pool documents (null: all)",
    )
    sample_seed: int = Field(0, description="seeds BETR's document sample and the balanced targets")
    balance_targets: bool = Field(
        True, description="BETR: cut every benchmark's targets to the smallest benchmark's count"
    )

    @model_validator(mode="before")
    @classmethod
    def _splits_moved(cls, data):
        # One knob for the target splits of every method (BETR, RDS+, the Meta-rater proxy): a second one
        # here could silently disagree with it.
        if isinstance(data, dict) and "splits" in data:
            raise ValueError(
                "score.similarity.splits moved to refs.target_splits (the splits every method selects "
                "with; refs.eval_split is held out): set that instead"
            )
        return data


class RdsConf(Strict):
    """RDS+: position-weighted mean pooled hidden states of a causal LM, max cosine per task."""

    encoder: ModelConf | None = None


class ScoreConf(Strict):
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
