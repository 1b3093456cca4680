"""Profile sections for where and how jobs run: Spark, progress lines, storage, GPUs, the sample corpus."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from jobs.config.base import Strict


class SparkConf(Strict):
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


class ProgressConf(Strict):
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


class StorageConf(Strict):
    """Where the lakehouse lives and which Delta engine writes it."""

    engine: Literal["auto", "embedded", "delta-spark"] = "auto"
    warehouse: str
    storage_options: dict[str, str] = Field(default_factory=dict, description="delta-rs object-store options")


class SampleConf(Strict):
    """The bundled sample corpus generator (demo and tests)."""

    out: str = "data/sample"
    docs: int = Field(5000, ge=1)
    seed: int = 0
    models: str | None = Field(
        None, description="where `corpuslake demo` builds its demo models (jobs/demo/models.py); null: none"
    )


class GpuConf(Strict):
    """GPU settings for scoring stages on a cluster."""

    enabled: bool = Field(False, description="request GPUs for scoring tasks (stage-level scheduling)")
    per_task: float = Field(1.0, gt=0, description="GPUs per scoring task (0.5: two tasks share a card)")
    dtype: Literal["bf16", "fp16", "fp32"] = Field("bf16", description="models whose dtype is auto, on CUDA")
