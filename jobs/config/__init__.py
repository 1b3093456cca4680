"""Profiles: one pydantic model validates a YAML profile, read once at a job's entry point.

A profile is a YAML file under ``conf/``. ``load_conf`` reads it, applies ``--set key=value`` overrides
(``jobs.config.overrides``) and validates the result. Every error names the file and the dotted key, so a
user can fix the profile without reading a stack trace. The sections are one module per group:
``runtime`` (spark, progress, storage, gpu, sample), ``inputs`` (ingest, refs), ``clean``, ``score``,
``decide`` (aggregate, select, export).
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import Field, ValidationError, field_validator

from jobs.config.base import ConfError, Strict
from jobs.config.clean import CleanConf, DecontamConf, NearDedupConf, RuleConf
from jobs.config.decide import (
    AggregateConf,
    BetrConf,
    BigramConf,
    DomainsConf,
    ExportConf,
    LightgbmConf,
    SelectConf,
    TokensExportConf,
    WeightsConf,
)
from jobs.config.inputs import (
    BenchmarkInput,
    FieldMap,
    HtmlConf,
    IngestConf,
    InputConf,
    ModelScoresInput,
    RefsConf,
)
from jobs.config.overrides import apply_override, list_value, parse_override
from jobs.config.runtime import GpuConf, ProgressConf, SampleConf, SparkConf, StorageConf
from jobs.config.score import (
    ModelConf,
    PerplexityConf,
    PrrcConf,
    RdsConf,
    ScoreConf,
    SimilarityConf,
    StratifiedSample,
)

__all__ = [
    "AggregateConf",
    "BenchmarkInput",
    "BetrConf",
    "BigramConf",
    "CleanConf",
    "Conf",
    "ConfError",
    "DecontamConf",
    "DomainsConf",
    "ExportConf",
    "FieldMap",
    "GpuConf",
    "HtmlConf",
    "IngestConf",
    "InputConf",
    "LightgbmConf",
    "ModelConf",
    "ModelScoresInput",
    "NearDedupConf",
    "PerplexityConf",
    "PrrcConf",
    "RdsConf",
    "RefsConf",
    "RuleConf",
    "SampleConf",
    "ScoreConf",
    "SelectConf",
    "SimilarityConf",
    "SparkConf",
    "StorageConf",
    "StratifiedSample",
    "TokensExportConf",
    "WeightsConf",
    "load_conf",
]


class Conf(Strict):
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
        parts, value = parse_override(item)
        apply_override(data, parts, list_value(Conf, parts, value), item)
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
