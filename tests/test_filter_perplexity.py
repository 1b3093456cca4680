"""The perplexity filter (Ziya2's automatic scoring): percentile bands on crafted perplexities."""

from __future__ import annotations

import argparse
import io
import json
import math
from datetime import datetime, timezone

import pytest

from jobs import filter_perplexity as fp
from jobs.methods.pplfilter import Bands, banded, cut_points, without_dropped
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
    """Ziya2: the lower 70% by perplexity stays; a new batch is judged against cuts over the whole pool."""
    lh, conf = lake
    first = {f"d{i:02d}": ("a.com" if i % 2 else "b.com", float(i)) for i in range(1, 21)}
    _silver(spark, lh, "clean-1", first)
    code, out = _run(conf())
    assert code == EXIT_OK, out
    cut = _nearest_rank([p for _, p in first.values()], 0.7)
    assert cut == 14.0
    # 15 … 20 are above the 70th percentile: dropped as perplexity:tail, their perplexity as the value.
    assert _dropped(lh) == {
        f"d{i}": ("perplexity", "perplexity:tail", float(i), "clean-1") for i in range(15, 21)
    }
    assert "    head            14  kept\n    tail             6  dropped" in out
    (row,) = lh.read(silver.FILTERED).filter("doc_id = 'd20'").collect()
    assert row["detail"] == (
        "perplexity under lm-a@main in band tail of the pool (20 documents): above 14.0000, at most -"
    )
    commits = lh.commit_info(silver.FILTERED, fp.LEDGER_KEY)
    assert [json.loads(v) for _, _, v in commits] == [["clean-1"]]

    # Nothing new: no version written, and the summary says so.
    v = lh.version(silver.FILTERED)
    code, out = _run(conf())
    assert code == EXIT_OK and "nothing new: every batch of silver.documents" in out
    assert lh.version(silver.FILTERED) == v

    # A second batch: cut points over all 24 scored documents (earlier verdicts stand).
    second = {"n1": ("a.com", 0.5), "n2": ("b.com", 13.5), "n3": ("a.com", 30.0), "n4": ("c.org", 40.0)}
    _silver(spark, lh, "clean-2", second)
    code, out = _run(conf())
    assert code == EXIT_OK, out
    pool = [p for _, p in first.values()] + [p for _, p in second.values()]
    assert _nearest_rank(pool, 0.7) == 15.0
    got = _dropped(lh)
    assert {d: r for d, r in got.items() if r[3] == "clean-2"} == {
        "n3": ("perplexity", "perplexity:tail", 30.0, "clean-2"),
        "n4": ("perplexity", "perplexity:tail", 40.0, "clean-2"),
    }
    assert len(got) == 8 and got["d15"][1] == "perplexity:tail"
    assert "judged 4 documents of 1 clean batch(es)" in out
    # Where the drops take effect: the pool the selection strategies score leaves them out.
    left = lh.read(silver.DOCUMENTS).transform(without_dropped(lh.read(silver.FILTERED)))
    assert left.count() == 24 - 8


def test_ccnet_buckets_per_domain_and_a_batch_without_drops(spark, lake):
    """CCNet's head/middle/tail thirds per domain; keeping every band still records the batch as judged."""
    lh, conf = lake
    docs = {f"a{i}": ("a.com", float(i)) for i in range(1, 10)}
    docs.update({f"b{i}": ("b.com", float(i)) for i in (10, 11, 12)})
    _silver(spark, lh, "clean-1", docs)
    pool = spark.createDataFrame(
        [(d, dom, p) for d, (dom, p) in docs.items()], "doc_id string, scope string, perplexity double"
    )
    bands = Bands.buckets(["head"])
    cuts = {r["scope"]: (r["docs"], r["cuts"]) for r in pool.transform(cut_points(bands)).collect()}
    assert cuts == {
        "a.com": (9, [_nearest_rank(list(range(1, 10)), 1 / 3), _nearest_rank(list(range(1, 10)), 2 / 3)]),
        "b.com": (3, [10.0, 11.0]),
    }
    assert cuts["a.com"][1] == [3.0, 6.0]
    got = {
        r["doc_id"]: (r["band"], r["kept"], r["low"], r["high"])
        for r in pool.transform(banded(pool.transform(cut_points(bands)), bands)).collect()
    }
    assert got["a3"] == ("head", True, None, 3.0) and got["a4"] == ("middle", False, 3.0, 6.0)
    assert got["a7"] == ("tail", False, 6.0, None) and got["b11"] == ("middle", False, 10.0, 11.0)

    code, out = _run(conf(method="buckets", keep_bands=["head", "middle"], scope="domain"))
    assert code == EXIT_OK, out
    assert {d: r[1] for d, r in _dropped(lh).items()} == {
        "a7": "perplexity:tail",
        "a8": "perplexity:tail",
        "a9": "perplexity:tail",
        "b12": "perplexity:tail",
    }
    # Every band kept: nothing to write, yet the batch counts as judged (audit.runs inputs).
    late = {"c1": ("c.org", 99.0)}
    _silver(spark, lh, "clean-2", late)
    v = lh.version(silver.FILTERED)
    code, out = _run(conf(method="buckets", keep_bands=["head", "middle", "tail"], scope="domain"))
    assert code == EXIT_OK and "nothing dropped; nothing written" in out
    assert lh.version(silver.FILTERED) == v
    assert fp.judged_batches(lh) == {"clean-1", "clean-2"}


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
