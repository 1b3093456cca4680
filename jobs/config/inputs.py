"""Profile sections for what is read: ingest inputs and limits, reference benchmarks and model scores."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from jobs.config.base import Strict


class FieldMap(Strict):
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


class InputConf(Strict):
    """One raw input: a path or glob in a known format."""

    name: str = Field(min_length=1, description="source name stored in bronze.documents.source")
    path: str = Field(min_length=1)
    format: Literal["auto", "jsonl", "parquet", "warc"] = "auto"
    fields: FieldMap = Field(default_factory=FieldMap)


class HtmlConf(Strict):
    """How HTML pages of WARC/ARC responses become text."""

    extractor: Literal["resiliparse", "trafilatura", "plain"] = Field(
        "resiliparse",
        description="resiliparse: main content, as DCLM; trafilatura: main content, as FineWeb; "
        "plain: every visible text block (menus and footers too)",
    )
    keep_title: bool = Field(True, description="the page <title> as the first line of the text")


class IngestConf(Strict):
    """Ingest limits and inputs."""

    inputs: list[InputConf] = Field(min_length=1)
    max_doc_bytes: int = Field(1_000_000, ge=1)
    max_line_bytes: int | None = Field(
        None, ge=1, description="longest raw record read into memory; default 4 x max_doc_bytes + 64 KiB"
    )
    commit_bytes: int | None = Field(
        None,
        ge=1,
        description="input bytes (file sizes as listed) read, checked and committed together; each batch is "
        "cached once and committed on its own, so a killed run keeps its finished batches; null: all at once",
    )
    max_json_array_bytes: int = Field(
        268_435_456,
        ge=1,
        description="largest .json file holding one JSON array (read whole, unlike JSON lines)",
    )
    split_bytes: int = Field(
        128 * 1024 * 1024, ge=1024, description="plain JSONL and Parquet files are split at this size"
    )
    snippet_chars: int = Field(200, ge=0)
    batch_rows: int = Field(2048, ge=1)
    html: HtmlConf = Field(default_factory=HtmlConf)

    @property
    def line_limit(self) -> int:
        return self.max_line_bytes or 4 * self.max_doc_bytes + 65536


class BenchmarkInput(Strict):
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


class RefsConf(Strict):
    """Reference inputs loaded by ``load_refs``, and which benchmark splits select data and which evaluate.

    Selection targets (BETR targets, RDS+ queries, the Meta-rater proxy's validation texts, the demo's own
    accuracies behind the perplexity-correlation y) come only from ``target_splits``; ``eval_split`` is
    held out of every method, and a gate fails when a target shares its normalized text with it.
    """

    benchmarks: list[BenchmarkInput] = Field(default_factory=list)
    model_scores: list[ModelScoresInput] = Field(default_factory=list)
    target_splits: list[str] = Field(
        ["train", "dev"], min_length=1, description="benchmark splits whose examples select data"
    )
    eval_split: str = Field("test", min_length=1, description="the split held out of every method")

    @field_validator("target_splits")
    @classmethod
    def _target_splits(cls, splits: list[str]) -> list[str]:
        from udfs.benchmarks import split_alias

        # Folded as load_refs folds a record's split (val → validation), so a name matches ref.benchmarks.
        folded = [split_alias(s) for s in splits]
        if any(not s for s in folded):
            raise ValueError("a split name must not be empty")
        return list(dict.fromkeys(folded))

    @field_validator("eval_split")
    @classmethod
    def _eval_split(cls, split: str) -> str:
        from udfs.benchmarks import split_alias

        split = split_alias(split)
        if not split:
            raise ValueError("must not be empty")
        return split

    @model_validator(mode="after")
    def _held_out(self) -> RefsConf:
        # An after-validator: it also sees a default eval_split, which field validators skip.
        if self.eval_split in self.target_splits:
            raise ValueError(
                f"eval_split {self.eval_split!r} is also in target_splits {self.target_splits}: the "
                "evaluation split is never used to select; take it out of target_splits or name another "
                "eval_split"
            )
        return self


class ModelScoresInput(Strict):
    """Per-model benchmark accuracies (CSV with a header, or JSONL): model_id, benchmark, accuracy."""

    path: str = Field(min_length=1, description="file or glob")
    format: Literal["auto", "csv", "jsonl"] = Field(
        "auto", description="auto: .csv files are CSV with a header row, anything else JSON lines"
    )
    model_field: str = Field("model_id", description="field with the model id (the pool's model ids)")
    benchmark_field: str = "benchmark"
    accuracy_field: str = Field("accuracy", description="field with the accuracy, 0-1")
