"""The whole small pipeline on delta-spark gives the same tables as on the embedded engine.

The session-scoped ``pipeline`` fixture runs every stage locally on the embedded engine. The delta-spark run
is ``cluster_pipeline``'s (tests/conftest.py): the same profile with ``storage.engine: delta-spark`` on a
standalone cluster, rerun after a killed driver and through two killed workers. One run serves both checks
because a second whole-pipeline run would cost the suite three minutes; a difference found here is a
difference of engine or of cluster, and tests/test_cluster.py's checks tell which faults hit. Compared:
the same rows (the same silver doc_ids, keys and every exact column), model scores within float
tolerance, identical selections.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from pyspark.sql.types import ArrayType, DoubleType, FloatType, TimestampType

from jobs.catalog import table_spec
from jobs.tables import DeltaSparkLakehouse, EmbeddedLakehouse

pytestmark = pytest.mark.slow

# Columns that name the run or the moment, not the data; and the versions a run read (the cluster's run is a
# rerun after a killed driver: its load_refs committed once more).
RUN_COLUMNS = {"run_id", "ingest_run_id", "clean_run_id", "score_run_id", "select_run_id", "table_versions"}
COMPARED = (
    "bronze.documents",
    "bronze.rejects",
    "silver.documents",
    "silver.filtered",
    "scores.quality",
    "scores.prrc",
    "scores.perplexity",
    "scores.embeddings",
    "scores.similarity",
    "gold.domain_correlations",
    "gold.rater_weights",
    "gold.doc_scores",
    "gold.selection",
)


def _frame(lh, name: str) -> tuple[pd.DataFrame, list[str], list[str]]:
    """The table as pandas, sorted by its exact columns; (frame, exact columns, float columns)."""
    spec = table_spec(name)
    fields = [
        f
        for f in spec.schema.fields
        if f.name not in RUN_COLUMNS and not isinstance(f.dataType, TimestampType)
    ]
    floats = [
        f.name
        for f in fields
        if isinstance(f.dataType, (DoubleType, FloatType))
        or (isinstance(f.dataType, ArrayType) and isinstance(f.dataType.elementType, (DoubleType, FloatType)))
    ]
    exact = [f.name for f in fields if f.name not in floats]
    pdf = lh.read(spec).select(*exact, *floats).toPandas()
    # Exact columns as text (maps, arrays and nulls included), so rows sort and compare by value.
    pdf[exact] = pdf[exact].map(_text)
    keys = pdf[exact].agg("|".join, axis=1) if exact else pd.Series([""] * len(pdf))
    return pdf.assign(_k=keys).sort_values("_k").drop(columns="_k").reset_index(drop=True), exact, floats


# A decimal with more digits than float tolerance needs, inside a text column: gold.doc_scores' detail
# names BETR's threshold, a sum whose last digits depend on the engine's partitioning.
LONG_DECIMAL = re.compile(r"-?\d+\.\d{7,}(?:e-?\d+)?")


def _text(v) -> str:
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, float) and np.isnan(v):
        return "None"
    if isinstance(v, str):
        # Compared to 6 significant digits, like the float columns' tolerance.
        return repr(LONG_DECIMAL.sub(lambda m: f"{float(m.group()):.6g}", v))
    return repr(v)


def _floats(col: pd.Series) -> np.ndarray:
    if len(col) and isinstance(col.iloc[0], (list, np.ndarray)):
        return np.stack([np.asarray(v, dtype=float) for v in col])
    return col.astype(float).to_numpy()


# The local run has 8 shuffle partitions, the cluster's 2, so the raters see other batches and their outputs
# differ in the 8th digit (scores.prrc above: 4e-8). The tiny random raters' outputs span only ~3e-5 over
# the pool, and Meta-rater's min-max normalization to [0, 5] divides by that span: Q differs by up to ~1e-3.
# Every other strategy's score agrees to 1e-14. gold.selection carries the same Q for Meta-rater's picks (the
# picks themselves, doc_ids and ranks, are compared exactly).
METARATER_ATOL = 5e-3


@pytest.mark.parametrize("name", COMPARED)
def test_delta_spark_pipeline_matches_embedded(spark, pipeline, cluster_pipeline, name):
    emb = EmbeddedLakehouse(spark, str(pipeline.warehouse))
    dsp = DeltaSparkLakehouse(spark, str(cluster_pipeline.warehouse))
    a, exact, floats = _frame(emb, name)
    b, _, _ = _frame(dsp, name)
    assert len(a) == len(b), f"{name}: {len(a)} rows embedded, {len(b)} on delta-spark"
    assert len(a) > 0 or name == "bronze.rejects"
    pd.testing.assert_frame_equal(a[exact], b[exact])
    # Exact columns hold _text's form of each value (a quoted repr), so the strategy is matched in that form.
    loose = np.zeros(len(a), bool)
    if name in ("gold.doc_scores", "gold.selection"):
        loose = (a["strategy"] == _text("metarater")).to_numpy()
        assert loose.any(), f"{name} has no Meta-rater rows to compare loosely"
    for c in floats:
        x, y = _floats(a[c]), _floats(b[c])
        for rows, atol in ((~loose, 1e-5), (loose, METARATER_ATOL)):
            np.testing.assert_allclose(x[rows], y[rows], rtol=1e-4, atol=atol, err_msg=f"{name}.{c}")
