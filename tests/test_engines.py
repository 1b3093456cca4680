"""The whole small pipeline on delta-spark gives the same tables as on the embedded engine.

The session-scoped ``pipeline`` fixture runs every stage on the embedded engine; this module runs the same
profile with ``storage.engine: delta-spark`` into another warehouse, in the same session (Delta's jars come
from ``make install``), and compares table contents: the same keys, model scores within float tolerance,
identical selections.
"""

from __future__ import annotations

import contextlib
import io
import types

import numpy as np
import pandas as pd
import pytest
import yaml
from pyspark.sql.types import ArrayType, DoubleType, FloatType, TimestampType

from jobs import cli
from jobs.catalog import all_specs, table_spec
from jobs.tables import DeltaSparkLakehouse, EmbeddedLakehouse

pytestmark = pytest.mark.slow

# Columns that name the run or the moment, not the data.
RUN_COLUMNS = {"run_id", "ingest_run_id", "clean_run_id", "score_run_id", "select_run_id"}
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


@pytest.fixture(scope="module")
def pipeline_delta(spark, pipeline, tmp_path_factory):
    profile = yaml.safe_load(pipeline.conf.read_text())
    base = tmp_path_factory.mktemp("pipeline-delta")
    profile["storage"] = {"engine": "delta-spark", "warehouse": str(base / "wh")}
    profile["export"]["path"] = str(base / "export")
    conf = base / "pipeline.yaml"
    conf.write_text(yaml.safe_dump(profile, sort_keys=False), encoding="utf-8")
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = cli.main(["run", "--conf", str(conf)])
    assert code == 0, stdout.getvalue()
    return types.SimpleNamespace(conf=conf, warehouse=base / "wh", stdout=stdout.getvalue())


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


def _text(v) -> str:
    if isinstance(v, np.ndarray):
        v = v.tolist()
    if isinstance(v, float) and np.isnan(v):
        return "None"
    return repr(v)


def _floats(col: pd.Series) -> np.ndarray:
    if len(col) and isinstance(col.iloc[0], (list, np.ndarray)):
        return np.stack([np.asarray(v, dtype=float) for v in col])
    return col.astype(float).to_numpy()


@pytest.mark.parametrize("name", COMPARED)
def test_delta_spark_pipeline_matches_embedded(spark, pipeline, pipeline_delta, name):
    emb = EmbeddedLakehouse(spark, str(pipeline.warehouse))
    dsp = DeltaSparkLakehouse(spark, str(pipeline_delta.warehouse))
    a, exact, floats = _frame(emb, name)
    b, _, _ = _frame(dsp, name)
    assert len(a) == len(b), f"{name}: {len(a)} rows embedded, {len(b)} on delta-spark"
    assert len(a) > 0 or name == "bronze.rejects"
    pd.testing.assert_frame_equal(a[exact], b[exact])
    for c in floats:
        np.testing.assert_allclose(_floats(a[c]), _floats(b[c]), rtol=1e-4, atol=1e-5, err_msg=f"{name}.{c}")


def test_delta_spark_run_used_delta_spark(pipeline_delta, spark):
    assert "\nDelta engine: delta-spark\nstage " in pipeline_delta.stdout
    dsp = DeltaSparkLakehouse(spark, str(pipeline_delta.warehouse))
    # Keyed score chunks were committed with MERGE, every other write as one gated commit.
    ops = {h["operation"] for h in dsp.history(table_spec("scores.prrc"))}
    assert "MERGE" in ops
    assert {s.name for s in all_specs()} >= set(COMPARED)
