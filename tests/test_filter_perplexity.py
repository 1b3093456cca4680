"""The perplexity filter (Ziya2's automatic scoring): percentile bands on crafted perplexities."""

from __future__ import annotations

import argparse
import io
import json
import math
from datetime import datetime, timezone

import pytest

from jobs import filter_perplexity as fp
from jobs.methods.pplfilter import Bands, banded, cut_points, scope_col, without_dropped
from jobs.runtime import EXIT_OK, EXIT_USAGE, run_job
from jobs.tables import EmbeddedLakehouse
from schemas import scores, silver
from tests.conftest import write_conf

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def _nearest_rank(values: list[float], q: float) -> float:
    """The independent reference for a cut: the value of rank ceil(q·n) (percentile_approx is exact on
    fewer values than its accuracy)."""
    return sorted(values)[math.ceil(q * len(values)) - 1]


def _silver(spark, lh, batch: str, docs: dict[str, tuple[str, float]]):
    """silver.documents rows of one clean batch, and their lm-a (and a few lm-b) perplexities."""
    rows = [
        {
            "doc_id": d,
            "url": f"https://{dom}/{d}",
            "domain": dom,
            "source": "s",
            "lang": "en",
            "lang_score": 1.0,
            "text": f"text of {d}",
            "n_bytes": 10,
            "n_bytes_raw": 10,
            "n_tokens_est": 3,
            "text_hash": d,
            "contamination": None,
            "clean_run_id": batch,
            "cleaned_at": NOW,
        }
        for d, (dom, _) in docs.items()
    ]
    lh.write(spark.createDataFrame(rows, silver.DOCUMENTS.schema), silver.DOCUMENTS, "append")
    # nll_sum = n_tokens · ln(ppl): the perplexity per token is ppl. lm-b (not the reference) disagrees.
    ppl = [(d, "lm-a", p) for d, (_, p) in docs.items()] + [(d, "lm-b", 1.0) for d in list(docs)[:3]]
    rows = [
        {
            "doc_id": d,
            "model_id": m,
            "revision": "main",
            "n_tokens": 8,
            "n_bytes": 10,
            "nll_sum": 8 * math.log(p),
            "bpb": 8 * math.log(p) / (math.log(2) * 10),
            "run_id": "score-1",
            "scored_at": NOW,
        }
        for d, m, p in ppl
    ]
    lh.write(spark.createDataFrame(rows, scores.PERPLEXITY.schema), scores.PERPLEXITY, "append")


@pytest.fixture
def lake(spark, tmp_path):
    lh = EmbeddedLakehouse(spark, str(tmp_path / "wh"))

    def conf(**pf) -> argparse.Namespace:
        path = write_conf(
            tmp_path / f"c{len(list(tmp_path.glob('c*.yaml')))}.yaml",
            tmp_path / "wh",
            [{"name": "x", "path": str(tmp_path / "none")}],
            {
                "score": {"perplexity": {"pool": [{"path": "lm-a"}, {"path": "lm-b"}]}},
                "filter": {"perplexity": {"enabled": True, "model": "lm-a", **pf}},
            },
        )
        return argparse.Namespace(conf=str(path), overrides=[], run_id=None, verbose=False)

    return lh, conf


def _run(args) -> tuple[int, str]:
    out = io.StringIO()
    code = run_job(fp.STAGE, args, fp.filter_perplexity, fp.READS, out=out, preflight=fp.preflight)
    return code, out.getvalue()


def _dropped(lh) -> dict[str, tuple]:
    rows = lh.read(silver.FILTERED).collect()
    return {r["doc_id"]: (r["step"], r["reason"], round(r["value"], 6), r["clean_run_id"]) for r in rows}


def test_keep_share_drops_the_tail_and_judges_each_batch_once(spark, lake):
    """Ziya2: the lower 70% by perplexity stays; each new batch is judged once, against cut points over the
    whole scored pool; earlier verdicts stand."""
    lh, conf = lake
    first = {f"d{i:02d}": ("a.com" if i % 2 else "b.com", float(i)) for i in range(1, 21)}
    _silver(spark, lh, "clean-1", first)
    code, out = _run(conf())
    assert code == EXIT_OK, out
    assert _nearest_rank([p for _, p in first.values()], 0.7) == 14.0
    # 15 … 20 are above the 70th percentile: dropped as perplexity:tail, their perplexity as the value.
    assert _dropped(lh) == {
        f"d{i}": ("perplexity", "perplexity:tail", float(i), "clean-1") for i in range(15, 21)
    }
    assert "    head            14  kept\n    tail             6  dropped" in out
    (row,) = lh.read(silver.FILTERED).filter("doc_id = 'd20'").collect()
    assert row["detail"] == (
        "perplexity under lm-a@main in band tail of the pool (20 documents): above 14.0000, at most -"
    )
    assert [json.loads(v) for _, _, v in lh.commit_info(silver.FILTERED, fp.LEDGER_KEY)] == [["clean-1"]]

    # A batch with nothing to drop (cut over 22 documents: 14): no version written, yet judged (audit.runs).
    _silver(spark, lh, "clean-2", {"n1": ("a.com", 0.5), "n2": ("b.com", 13.5)})
    v = lh.version(silver.FILTERED)
    code, out = _run(conf())
    assert code == EXIT_OK and "  nothing dropped; nothing written" in out
    assert lh.version(silver.FILTERED) == v and fp.judged_batches(lh) == {"clean-1", "clean-2"}

    # A third batch alone is judged, against the cut over all 25 scored documents: 15, so 14.5 stays.
    third = {"n3": ("a.com", 30.0), "n4": ("c.org", 40.0), "n5": ("b.com", 14.5)}
    _silver(spark, lh, "clean-3", third)
    code, out = _run(conf())
    assert code == EXIT_OK, out
    pool = [*range(1, 21), 0.5, 13.5, 30.0, 40.0, 14.5]
    assert _nearest_rank(pool, 0.7) == 15.0
    assert "judged 3 documents of 1 clean batch(es) under lm-a@main; cut points over 25 scored" in out
    got = _dropped(lh)
    assert {d: r for d, r in got.items() if r[3] != "clean-1"} == {
        "n3": ("perplexity", "perplexity:tail", 30.0, "clean-3"),
        "n4": ("perplexity", "perplexity:tail", 40.0, "clean-3"),
    }
    assert len(got) == 8 and got["d15"][1] == "perplexity:tail"  # d15 is at the new cut: its verdict stands
    # Nothing new: the summary says so, nothing is written.
    v = lh.version(silver.FILTERED)
    code, out = _run(conf())
    assert code == EXIT_OK and "nothing new: every batch of silver.documents" in out
    assert lh.version(silver.FILTERED) == v
    # Where the drops take effect: the pool the selection strategies score leaves them out.
    left = lh.read(silver.DOCUMENTS).transform(without_dropped(lh.read(silver.FILTERED)))
    assert left.count() == 25 - 8


def test_ccnet_buckets_per_domain(spark):
    """CCNet's head/middle/tail thirds, cut per domain; ties stay in the lower band."""
    docs = [(f"a{i}", "a.com", float(i)) for i in range(1, 10)] + [
        (f"b{i}", "b.com", float(i)) for i in (10, 11, 12)
    ]
    pool = spark.createDataFrame(docs, "doc_id string, domain string, perplexity double").withColumn(
        "scope", scope_col("domain")
    )
    bands = Bands.buckets(["head", "middle"])
    cuts = pool.transform(cut_points(bands)).persist()
    thirds = [_nearest_rank(list(range(1, 10)), q) for q in (1 / 3, 2 / 3)]
    assert {r["scope"]: (r["docs"], r["cuts"]) for r in cuts.collect()} == {
        "a.com": (9, thirds),
        "b.com": (3, [10.0, 11.0]),
    }
    assert thirds == [3.0, 6.0]
    got = {
        r["doc_id"]: (r["band"], r["kept"], r["low"], r["high"])
        for r in pool.transform(banded(cuts, bands)).collect()
    }
    assert got["a3"] == ("head", True, None, 3.0) and got["a4"] == ("middle", True, 3.0, 6.0)
    assert got["a7"] == ("tail", False, 6.0, None) and got["b11"] == ("middle", True, 10.0, 11.0)
    assert sorted(d for d, r in got.items() if not r[1]) == ["a7", "a8", "a9", "b12"]
    cuts.unpersist()


def test_missing_reference_scores_and_unknown_model_are_one_line_errors(spark, lake, capsys):
    lh, conf = lake
    _silver(spark, lh, "clean-1", {"x1": ("a.com", 3.0)})
    unscored = [{**r.asDict(), "doc_id": "x2"} for r in lh.read(silver.DOCUMENTS).collect()]
    lh.write(spark.createDataFrame(unscored, silver.DOCUMENTS.schema), silver.DOCUMENTS, "append")
    code, _ = _run(conf())
    assert code == EXIT_USAGE
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "error: filter_perplexity: 1 of the 2 documents to judge have no score under lm-a@main in "
        "scores.perplexity; run score_perplexity first (it scores filter.perplexity.model on every document)"
    )
    assert not lh.exists(silver.FILTERED) and fp.judged_batches(lh) == set()
    code, _ = _run(conf(model="lm-z"))
    assert code == EXIT_USAGE
    assert "filter.perplexity.model: 'lm-z' is not a score.perplexity.pool model (ids: lm-a, lm-b)" in (
        capsys.readouterr().err
    )
