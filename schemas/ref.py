"""Reference data: benchmark examples (targets and decontamination) and per-model benchmark accuracies."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark.sql.types import ArrayType, DoubleType, IntegerType, StringType, StructType, TimestampType

from schemas.base import TableSpec, col

# Check column (``jobs.methods.heldout.eval_overlap``) on a target example whose normalized text an
# evaluation-split example also has: that example's ``benchmark|split|example_id``; null otherwise.
EVAL_OVERLAP = "_eval_overlap"


def _held_out(params: Mapping[str, Any]) -> list:
    """With ``eval_split``: no row of a target split shares its normalized text with the evaluation split
    (the staged rows carry ``EVAL_OVERLAP``)."""
    import great_expectations as gx

    if not params.get("eval_split"):
        return []
    return [gx.expectations.ExpectColumnValuesToBeNull(column=EVAL_OVERLAP)]


def _benchmarks_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    exps = [
        e.ExpectCompoundColumnsToBeUnique(column_list=["benchmark", "split", "example_id"]),
        e.ExpectColumnValueLengthsToBeBetween(column="text", min_value=1),
    ]
    return exps + _held_out(params)


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


def _targets_suite(params: Mapping[str, Any]) -> list:
    """The examples a stage selects with: from ``target_splits`` only, none from ``eval_split``, and none
    whose normalized text the evaluation split also has."""
    import great_expectations as gx

    e = gx.expectations
    exps = [e.ExpectColumnValuesToBeInSet(column="split", value_set=list(params["target_splits"]))]
    if params.get("eval_split"):
        exps.append(e.ExpectColumnValuesToNotBeInSet(column="split", value_set=[params["eval_split"]]))
    return exps + _held_out(params)


# Not a stored table: the contract of the benchmark examples a stage takes as its targets (BETR targets,
# RDS+ queries, the Meta-rater proxy's validation texts), validated by ``jobs.gates.check`` before use.
TARGETS = TableSpec(
    name="ref.targets",
    # ref.benchmarks' own fields, less where each example came from.
    schema=StructType(
        [f for f in BENCHMARKS.schema.fields if f.name in ("benchmark", "split", "example_id", "text")]
    ),
    description="the benchmark examples a stage selects with (validated, never stored)",
    suite=_targets_suite,
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

# Column ``load_refs`` adds to the staged eval items: the item's answer_index when it is not an index of its
# choices (or is missing while there are choices); null where the item is consistent.
BAD_ANSWER = "_bad_answer"


def _eval_items_suite(params: Mapping[str, Any]) -> list:
    import great_expectations as gx

    e = gx.expectations
    exps = [
        e.ExpectCompoundColumnsToBeUnique(column_list=["benchmark", "split", "example_id"]),
        e.ExpectColumnValueLengthsToBeBetween(column="answer", min_value=1),
        e.ExpectColumnValuesToBeBetween(column="answer_index", min_value=0),
    ]
    if params.get("checked"):
        exps.append(e.ExpectColumnValuesToBeNull(column=BAD_ANSWER))
    return exps


EVAL_ITEMS = TableSpec(
    name="ref.eval_items",
    schema=StructType(
        [
            col("benchmark", StringType(), False, "benchmark name (as ref.benchmarks)"),
            col("split", StringType(), False, "split (as ref.benchmarks)"),
            col("example_id", StringType(), False, "example id (as ref.benchmarks)"),
            col("prompt", StringType(), False, "what the model is given: the question (and its context)"),
            col("answer", StringType(), False, "the gold answer, scored as the prompt's continuation"),
            col(
                "choices", ArrayType(StringType()), True, "multiple choice: every choice (null: open answer)"
            ),
            col("answer_index", IntegerType(), True, "multiple choice: the gold choice's index"),
            col("source_file", StringType(), False, "file the example came from"),
            col("load_run_id", StringType(), False, "load_refs run"),
            col("loaded_at", TimestampType(), False, "when (UTC)"),
        ]
    ),
    description="one row per benchmark example with a readable answer: what evaluate scores",
    suite=_eval_items_suite,
)

TABLES = (BENCHMARKS, EVAL_ITEMS, MODEL_SCORES)
