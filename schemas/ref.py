"""Reference data: benchmark examples (targets and decontamination) and per-model benchmark accuracies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark.sql.types import DoubleType, StringType, StructType, TimestampType

from schemas.base import TableSpec, col


def _benchmarks_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    exps = [
        e.ExpectCompoundColumnsToBeUnique(column_list=["benchmark", "split", "example_id"]),
        e.ExpectColumnValueLengthsToBeBetween(column="text", min_value=1),
    ]
    return exps


BENCHMARKS = TableSpec(
    name="ref.benchmarks",
    schema=StructType(
        [
            col("benchmark", StringType(), False, "benchmark name"),
            col("split", StringType(), False, "split (test, validation, …)"),
            col("example_id", StringType(), False, "example id within the benchmark"),
            col("text", StringType(), False, "one target text: question, choices, answer and support joined"),
            col(
                "support",
                StringType(),
                True,
                "the support passage's lines as they stand in text (fields support, passage); null: none",
            ),
            col("source_file", StringType(), False, "file the example came from"),
            col("load_run_id", StringType(), False, "load_refs run"),
            col("loaded_at", TimestampType(), False, "when (UTC)"),
        ]
    ),
    description="one row per benchmark example",
    suite=_benchmarks_suite,
)

# Column ``load_refs`` adds to the staged model scores before validating: what the perplexity pool lacks,
# on each row of a pool model without a score for every benchmark of the group ("lm-b has no score for
# piqa") and on the first row when pool models have no rows at all; null where nothing is missing.
MISSING_SCORES = "_missing_scores"


def _model_scores_suite(params: Mapping[str, Any]) -> list:
    """Accuracies in [0, 1], one per (model, benchmark); with ``pool_models``, every pool model present and
    (``checked``: the staged rows carry ``MISSING_SCORES``) scored on every benchmark of the group."""
    import great_expectations as gx

    e = gx.expectations
    exps = [
        e.ExpectCompoundColumnsToBeUnique(column_list=["model_id", "benchmark"]),
        e.ExpectColumnValuesToBeBetween(column="accuracy", min_value=0.0, max_value=1.0),
    ]
    if params.get("pool_models"):
        exps.append(
            e.ExpectColumnDistinctValuesToContainSet(column="model_id", value_set=list(params["pool_models"]))
        )
    if params.get("checked"):
        exps.append(e.ExpectColumnValuesToBeNull(column=MISSING_SCORES))
    return exps


MODEL_SCORES = TableSpec(
    name="ref.model_scores",
    schema=StructType(
        [
            col("model_id", StringType(), False, "model id, as the perplexity pool names it"),
            col("benchmark", StringType(), False, "benchmark name"),
            col("accuracy", DoubleType(), False, "the model's accuracy on the benchmark, 0-1"),
            col("source_file", StringType(), False, "file the score came from"),
            col("load_run_id", StringType(), False, "load_refs run"),
            col("loaded_at", TimestampType(), False, "when (UTC)"),
        ]
    ),
    description="one row per (model, benchmark) accuracy, for perplexity correlations",
    suite=_model_scores_suite,
)

TABLES = (BENCHMARKS, MODEL_SCORES)
