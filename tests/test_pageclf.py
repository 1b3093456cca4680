"""The page classifier: both backends (fastText on the driver and executors, Spark ML) and the per-class
training sample."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from pyspark.sql import functions as F

from jobs.methods import pageclf
from jobs.methods.sampling import class_sample, unit_hash

sys.path.insert(0, str(Path(__file__).parent / "fixtures"))
from pages import CLF, CLF_SETTINGS, FT_CLF  # noqa: E402
from pages import text as _text  # noqa: E402


def test_classifier_separates_a_separable_task_deterministically(spark):
    rng = np.random.default_rng(0)
    rows = [(f"d{i:03d}", _text(rng, float(i % 2), int(rng.integers(5, 30))), i % 2) for i in range(120)]
    df = spark.createDataFrame(rows, "doc_id string, text string, label int")
    train, held = df.filter(F.col("doc_id") < "d090"), df.filter(F.col("doc_id") >= "d090")
    model = pageclf.train(train, CLF.model())
    got = pageclf.score(model, held).collect()
    assert len(got) == 30 and set(got[0].asDict()) == {"doc_id", "text", "label", "p_include"}
    assert all((r["p_include"] > 0.5) == (r["label"] == 1) for r in got)  # held-out accuracy 1.0


def test_classifier_uses_bigrams_and_is_deterministic(spark):
    """The same words, only their order tells the classes apart: unigram counts cannot, bigrams can."""
    rows = [(f"a{i}", "Red fox, blue cat", 1) for i in range(10)] + [
        (f"b{i}", "red cat blue FOX", 0) for i in range(10)
    ]
    df = spark.createDataFrame(rows, "doc_id string, text string, label int")
    clf = pageclf.pipeline(**{**CLF_SETTINGS, "max_iter": 4})
    got = [(r["label"], r["p_include"]) for r in pageclf.score(pageclf.train(df, clf), df).collect()]
    assert all((p > 0.9) if label else (p < 0.1) for label, p in got)
    assert [(r["label"], r["p_include"]) for r in pageclf.score(pageclf.train(df, clf), df).collect()] == got


def test_classifier_needs_both_labels(spark):
    df = spark.createDataFrame([("a", "x y", 1)], "doc_id string, text string, label int")
    with pytest.raises(ValueError, match="both labels"):
        pageclf.train(df, CLF.model())


def _leave_nans_on_the_heap(nbytes: int) -> None:
    """Leave the driver's heap as a busy one's can be: a freed block of NaNs that an allocation of ``nbytes``
    reuses. Freeing a mapped block larger than that first raises glibc's dynamic mmap threshold past it, so
    the next block comes from the heap, not from fresh (zeroed) pages."""
    big = np.full(2 * nbytes // 4, np.nan, np.float32)
    del big
    reused = np.full(nbytes // 4 + (1 << 16), np.nan, np.float32)
    del reused


def test_zero_filled_allocations_zero_a_reused_heap_block_and_nest():
    """Inside, a block malloc hands out is zeros even where the heap held freed NaNs; a nested user leaving
    does not turn it off for the outer one."""
    from udfs.fasttext_clf import zero_filled_allocations

    n = 8 << 20
    with zero_filled_allocations() as ok:
        with zero_filled_allocations() as inner:
            assert ok and inner
        _leave_nans_on_the_heap(n)
        block = np.empty(n // 4, np.float32)  # numpy takes blocks this size from malloc
        assert not block.any()


def test_fasttext_backend_trains_on_the_driver_and_scores_on_executors(spark):
    """fastText (thread 1, seeded): a fit on a heap full of freed NaNs equals the first fit bit for bit (this
    fastText build leaves nine tenths of its input matrix uninitialised: without zero_filled_allocations the
    second fit stops with "Encountered NaN."); the executors' scores (model file shipped with addFile) equal
    the driver model's own predictions; the held-out pages are told apart."""
    import fasttext

    from udfs.fasttext_clf import fasttext_text

    rng = np.random.default_rng(0)
    rows = [(f"d{i:03d}", _text(rng, 0.9 if i % 2 else 0.1, 40), i % 2) for i in range(160)]
    df = spark.createDataFrame(rows, "doc_id string, text string, label int").repartition(3)
    train, held = df.filter(F.col("doc_id") < "d120"), df.filter(F.col("doc_id") >= "d120")
    models = [pageclf.fit(train, FT_CLF)]
    try:
        # the input matrix: (words + buckets) rows of dim floats; 64 rows cover the fixture's 24 words, </s>
        _leave_nans_on_the_heap((FT_CLF.fasttext.bucket + 64) * FT_CLF.fasttext.dim * 4)
        models.append(pageclf.fit(train, FT_CLF))
        assert (models[0].n_pos, models[0].n_neg) == (60, 60)
        files = [Path(m.folder, m.name).read_bytes() for m in models]
        assert files[0] == files[1]
        got = [{r["doc_id"]: (r["label"], r["p_include"]) for r in m.score(held).collect()} for m in models]
        assert got[0] == got[1] and len(got[0]) == 40
        assert all(abs(p - 0.5) > 0.3 and (p > 0.5) == (label == 1) for label, p in got[0].values())
        local = fasttext.load_model(f"{models[0].folder}/{models[0].name}")
        texts = dict(zip([r[0] for r in rows], [r[1] for r in rows], strict=True))
        for doc_id, (_, p) in got[0].items():
            labels, probs = local.predict(fasttext_text(texts[doc_id]), k=2)
            assert p == pytest.approx(float(dict(zip(labels, probs, strict=True))["__label__1"]), abs=1e-6)
    finally:
        for m in models:
            m.unpersist()
    assert not Path(models[0].folder).exists()
    one_class = spark.createDataFrame([("a", "x y", 1)], "doc_id string, text string, label int")
    with pytest.raises(ValueError, match="both labels"):
        pageclf.fit(one_class, FT_CLF)


def test_class_sample_caps_each_label(spark):
    rows = [(f"n{i:02d}", 0) for i in range(40)] + [(f"p{i}", 1) for i in range(3)]
    df = spark.createDataFrame(rows, "doc_id string, label int")
    got = class_sample(df, 5, seed=2).collect()
    assert sorted(r["label"] for r in got) == [0] * 5 + [1] * 3
    h = {r["doc_id"]: r["h"] for r in df.select("doc_id", unit_hash(2, "class-sample").alias("h")).collect()}
    smallest = sorted((d for d, _ in rows if d.startswith("n")), key=lambda d: (h[d], d))[:5]
    assert sorted(r["doc_id"] for r in got if r["label"] == 0) == sorted(smallest)
    assert class_sample(df, None, seed=2) is df
    # per-label caps: 4 negatives, every positive
    got = class_sample(df, {0: 4, 1: None}, seed=2).collect()
    assert sorted(r["doc_id"] for r in got) == sorted(smallest[:4] + ["p0", "p1", "p2"])
