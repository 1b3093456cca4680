"""select and export on hand-made gold.doc_scores: picks vs a pandas reference, gates, shards, manifests."""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import random
from datetime import datetime, timezone
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from jobs import export, selection
from jobs.methods import pick
from jobs.runtime import EXIT_GATE, EXIT_OK, EXIT_USAGE, UsageError, run_job
from jobs.tables import EmbeddedLakehouse
from schemas import gold, silver
from tests.conftest import silver_row

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)
DOMAINS = ["a.com", "b.org", "c.net", "d.io", None]
WORDS = ["data", "model", "token", "café", "naïve", "日本語", "corpus", "select", "budget", "shard", "ünï"]
UPSTREAM = '{"scores.similarity": 4, "silver.documents": 0}'


def _docs(n: int = 80, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(20, 300)))
        out.append(
            silver_row(
                f"d{i:03d}",
                text,
                url=None if i % 7 == 0 else f"https://x/{i}",
                domain=DOMAINS[i % len(DOMAINS)],
                source="web" if i % 3 else "books",
                text_hash=f"h{i}",
            )
        )
    return out


def _scores(docs: list[dict], seed: int = 5) -> pd.DataFrame:
    """betr: scores with many ties; metarater: a subset of the docs; pplcorr: one score for all (doc_id)."""
    rng = random.Random(seed)
    rows = []
    for d in docs:
        base = {"doc_id": d["doc_id"], "domain": d["domain"], "n_tokens": d["n_tokens_est"]}
        rows.append({**base, "strategy": "betr", "score": round(rng.random(), 1)})
        if int(d["doc_id"][1:]) % 4 != 1:
            rows.append({**base, "strategy": "metarater", "score": rng.random() * 5})
        rows.append({**base, "strategy": "pplcorr", "score": 0.5})
    return pd.DataFrame(rows)


def _write_scores(spark, lh, scores: pd.DataFrame) -> None:
    rows = [
        {**r, "detail": None, "run_id": "agg-0", "computed_at": NOW, "table_versions": UPSTREAM}
        for r in scores.astype(object).where(scores.notna(), None).to_dict("records")
    ]
    df = spark.createDataFrame(rows, gold.DOC_SCORES.schema)
    lh.write(df, gold.DOC_SCORES, "overwrite", run_id="agg-0")


BUDGET = 6000
CAP_SHARE = 0.3
WEIGHTS = {"betr": 2.0, "metarater": 1.0, "pplcorr": 0.5}


@pytest.fixture(scope="module")
def lake(spark, tmp_path_factory):
    """silver.documents + gold.doc_scores in a temp warehouse, and one select run over them (betr and blend;
    rds has no scores) with a domain cap; ``conf(**sections)`` writes a profile."""
    tmp = tmp_path_factory.mktemp("select")
    lh = EmbeddedLakehouse(spark, str(tmp / "wh"))
    docs = _docs()
    lh.write(spark.createDataFrame(docs, silver.DOCUMENTS.schema), silver.DOCUMENTS, "overwrite", run_id="c0")
    scores = _scores(docs)
    _write_scores(spark, lh, scores)

    def conf(**sections) -> argparse.Namespace:
        data = {
            "profile": "test",
            "spark": {"master": "local[2]", "shuffle_partitions": 2, "progress": False, "log_level": "ERROR"},
            "storage": {"engine": "embedded", "warehouse": str(tmp / "wh")},
            "ingest": {"inputs": [{"name": "x", "path": str(tmp / "none")}]},
            **sections,
        }
        path = tmp / f"c{len(list(tmp.glob('c*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(data))
        return argparse.Namespace(conf=str(path), overrides=[], run_id=None, verbose=False)

    select_conf = {
        "strategies": ["betr", "rds", "blend"],
        "token_budget": BUDGET,
        "max_domain_share": CAP_SHARE,
        "blend": WEIGHTS,
    }
    code, out = _run(selection, conf(select=select_conf))
    assert code == EXIT_OK, out
    return SimpleNamespace(lh=lh, conf=conf, docs=docs, scores=scores, tmp=tmp, out=out, select=select_conf)


def _run(module, args) -> tuple[int, str]:
    out = io.StringIO()
    body = getattr(module, module.STAGE)
    return run_job(
        module.STAGE, args, body, module.READS, out=out, preflight=module.preflight
    ), out.getvalue()


def _selected(lh, strategy: str) -> pd.DataFrame:
    pdf = lh.read(gold.SELECTION).toPandas()
    return pdf[pdf["strategy"] == strategy].sort_values("rank").reset_index(drop=True)


# ----------------------------------------------------------------------------------- pandas references


def ref_pick(cands: pd.DataFrame, budget: int, cap: int | None = None) -> pd.DataFrame:
    """Score desc, doc_id asc; skip docs past their domain's running cap; stop at the first overflow."""
    rows = cands.sort_values(["score", "doc_id"], ascending=[False, True]).to_dict("records")
    by_domain: dict = {}
    out, cum = [], 0
    for r in rows:
        dom = None if pd.isna(r["domain"]) else r["domain"]
        by_domain[dom] = by_domain.get(dom, 0) + r["n_tokens"]
        if cap is not None and by_domain[dom] > cap:
            continue
        if cum + r["n_tokens"] > budget:
            break
        cum += r["n_tokens"]
        out.append({"doc_id": r["doc_id"], "score": r["score"], "tokens": r["n_tokens"], "cum_tokens": cum})
    pdf = pd.DataFrame(out)
    pdf["rank"] = range(1, len(pdf) + 1)
    return pdf


def ref_blend(scores: pd.DataFrame, weights: dict[str, float]) -> pd.DataFrame:
    """Σ_s w_s/Σw · (rank_min − 1)/(n − 1) over each strategy's scores ascending, summed in name order."""
    total = sum(weights.values())
    terms: dict[str, list[tuple[str, float]]] = {}
    meta = {}
    for s in sorted(weights):
        part = scores[scores["strategy"] == s]
        n = len(part)
        rank = part["score"].rank(method="min", ascending=True)
        pr = (rank - 1) / (n - 1) if n > 1 else rank * 0.0
        for doc, p, dom, tok in zip(part["doc_id"], pr, part["domain"], part["n_tokens"], strict=True):
            terms.setdefault(doc, []).append((s, p * (weights[s] / total)))
            meta[doc] = (dom, tok)
    rows = []
    for doc, ts in terms.items():
        acc = 0.0
        for _, t in sorted(ts):
            acc += t
        rows.append({"doc_id": doc, "score": acc, "domain": meta[doc][0], "n_tokens": meta[doc][1]})
    return pd.DataFrame(rows)


def _assert_pick(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert got["doc_id"].tolist() == want["doc_id"].tolist()
    assert got["rank"].tolist() == want["rank"].tolist()
    assert got["cum_tokens"].tolist() == want["cum_tokens"].tolist()
    assert got["tokens"].tolist() == want["tokens"].tolist()
    assert got["score"].tolist() == pytest.approx(want["score"].tolist(), abs=1e-12)


def _candidates(spark, scores: pd.DataFrame):
    return spark.createDataFrame(
        scores.astype(object).where(scores.notna(), None).to_dict("records"),
        "strategy string, doc_id string, score double, domain string, n_tokens long",
    )


# ------------------------------------------------------------------------------------------------ select


@pytest.mark.parametrize("budget,share", [(4000, None), (9000, None), (9000, 0.2), (15000, 0.2)])
def test_pick_equals_reference(spark, lake, budget, share):
    cap = pick.domain_cap(budget, share)
    got_all = _candidates(spark, lake.scores).transform(pick.pick(budget, cap)).toPandas()
    for s in ("betr", "metarater", "pplcorr"):
        got = got_all[got_all["strategy"] == s].sort_values("rank").reset_index(drop=True)
        cands = lake.scores[lake.scores["strategy"] == s]
        want = ref_pick(cands, budget, cap)
        _assert_pick(got, want)
        assert got["cum_tokens"].max() <= budget
        if cap is not None:
            assert (got.groupby(got["domain"].fillna("(none)"))["tokens"].sum() <= cap).all()
            # the cap binds: without it the pick differs
            assert ref_pick(cands, budget)["doc_id"].tolist() != want["doc_id"].tolist()
        elif len(got) < len(cands):
            # stop at the first overflow: the next document in score order would not have fit
            order = cands.sort_values(["score", "doc_id"], ascending=[False, True])
            assert got["cum_tokens"].iloc[-1] + order.iloc[len(got)]["n_tokens"] > budget
    # ties broken by doc_id: pplcorr gives every document the same score
    ppl = got_all[got_all["strategy"] == "pplcorr"].sort_values("rank")
    assert ppl["doc_id"].tolist() == sorted(ppl["doc_id"].tolist())


def test_blend_equals_reference(spark, lake):
    weights = pick.blend_weights(WEIGHTS, ["betr", "metarater", "pplcorr"])
    assert list(weights) == ["betr", "metarater", "pplcorr"] and sum(weights.values()) == pytest.approx(1.0)
    blended = pick.blend_scores(_candidates(spark, lake.scores), weights).toPandas()
    want = ref_blend(lake.scores, WEIGHTS).sort_values("doc_id").reset_index(drop=True)
    got = blended.sort_values("doc_id").reset_index(drop=True)
    assert got["doc_id"].tolist() == want["doc_id"].tolist()  # metarater's unscored docs are in, at 0 for it
    assert got["score"].tolist() == pytest.approx(want["score"].tolist(), abs=1e-12)
    assert (got["strategy"] == "blend").all()
    with pytest.raises(UsageError, match="rds has no rows"):
        pick.blend_weights({"betr": 1.0, "rds": 1.0}, ["betr"])


def test_selection_check_flags_gaps_sums_caps_and_missing_docs(spark):
    """The gate's checks are joins and aggregations (no window per strategy); each flags its rows."""
    docs = spark.createDataFrame([(f"d{i}",) for i in range(5)], "doc_id string")
    rows = [
        # strategy s: ranks 1, 2, 4 (a gap: 4 > 3 rows, and rank 3's cum_tokens is missing); domain a holds
        # 5 + 6 = 11 tokens, over the cap of 10
        ("r", "s", "d0", 1, "a", 5, 5),
        ("r", "s", "d1", 2, "a", 6, 11),
        ("r", "s", "d2", 4, "b", 3, 14),
        # strategy t: right, but for a document silver lacks and a wrong running sum at rank 3
        ("r", "t", "d3", 1, None, 4, 4),
        ("r", "t", "ghost", 2, None, 4, 8),
        ("r", "t", "d4", 3, "b", 1, 10),
    ]
    staged = spark.createDataFrame(
        rows,
        "run_id string, strategy string, doc_id string, rank int, domain string, tokens long, "
        "cum_tokens long",
    )
    out = selection.selection_check(docs, 10)(staged).toPandas()

    def flagged(col):
        return sorted(out[col].dropna())

    assert len(out) == 6
    assert flagged("_missing_doc") == ["ghost"]
    assert flagged("_rank_gap") == ["d2"]
    assert flagged("_cum_mismatch") == ["d2", "d4"]
    assert flagged("_over_domain_cap") == ["d0", "d1"]


def test_select_stage_writes_the_picks(lake):
    lh = lake.lh
    assert "rds: skipped, no rows in gold.doc_scores" in lake.out
    cap = pick.domain_cap(BUDGET, CAP_SHARE)
    assert set(lh.read(gold.SELECTION).toPandas()["strategy"]) == {"betr", "blend"}
    for s in ("betr", "blend"):
        cands = ref_blend(lake.scores, WEIGHTS) if s == "blend" else lake.scores[lake.scores["strategy"] == s]
        got = _selected(lh, s)
        _assert_pick(got, ref_pick(cands, BUDGET, cap))
        versions = json.loads(got["table_versions"].iloc[0])
        assert versions == {
            "silver.documents": lh.version(silver.DOCUMENTS),
            "gold.doc_scores": lh.version(gold.DOC_SCORES),
            "scores.similarity": 4,
        }
        assert got["run_id"].nunique() == 1


def test_rerun_on_same_versions_is_identical(lake):
    lh = lake.lh
    first = lh.read(gold.SELECTION).toPandas()
    assert _run(selection, lake.conf(select=lake.select))[0] == EXIT_OK
    second = lh.read(gold.SELECTION).toPandas()
    assert first["run_id"].nunique() == second["run_id"].nunique() == 1
    assert first["run_id"].iloc[0] != second["run_id"].iloc[0]  # the partitions were replaced
    keep = [c for c in first.columns if c not in ("run_id", "selected_at")]

    def norm(df):
        return df[keep].sort_values(["strategy", "rank"]).reset_index(drop=True)

    pd.testing.assert_frame_equal(norm(first), norm(second))


def test_usage_errors(lake, capsys):
    conf = lake.conf
    before = lake.lh.version(gold.SELECTION)
    assert _run(selection, conf(select={"strategies": ["rds", "random"]}))[0] == EXIT_USAGE
    assert "has rows in gold.doc_scores" in capsys.readouterr().err
    assert _run(selection, conf(select={"strategies": ["blend"]}))[0] == EXIT_USAGE  # preflight: no weights
    assert "select.blend is empty" in capsys.readouterr().err
    bad = conf(select={"strategies": ["blend"], "blend": {"betr": -1.0}})
    assert _run(selection, bad)[0] == EXIT_USAGE  # conf validation
    assert "select.blend" in capsys.readouterr().err
    assert _run(selection, conf(select={"strategies": ["betr"], "token_budget": 1}))[0] == EXIT_USAGE
    assert "nothing fits the token budget" in capsys.readouterr().err
    assert lake.lh.version(gold.SELECTION) == before


# ------------------------------------------------------------------------------------------------ export


def _read_jsonl(folder: Path) -> list[dict]:
    rows = []
    for f in sorted(folder.glob("part-*.jsonl.gz")):
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            rows.extend(json.loads(line) for line in fh)
    return rows


def _expected_rows(lh, docs: list[dict], strategy: str) -> list[dict]:
    by_id = {d["doc_id"]: d for d in docs}
    sel = _selected(lh, strategy)
    return [
        {
            "doc_id": r.doc_id,
            "strategy": strategy,
            "rank": int(r.rank),
            "url": by_id[r.doc_id]["url"],
            "domain": by_id[r.doc_id]["domain"],
            "source": by_id[r.doc_id]["source"],
            "n_tokens": int(r.tokens),
            "text": by_id[r.doc_id]["text"],
        }
        for r in sel.itertuples()
    ]


def test_shard_writer_on_pandas(tmp_path):
    import pyarrow.fs as pafs

    from udfs.shards import ShardWriter

    lines = ['{"doc_id":"a","text":"é"}', '{"doc_id":"b"}', '{"doc_id":"c"}']
    rows = pd.DataFrame(
        {
            "shard": [0, 0, 1],
            "rank": [1, 2, 3],
            "line_bytes": [len(x.encode("utf-8")) + 1 for x in lines],
            "_line": lines,
        }
    )
    # Shard 0 spans two batches; an empty batch in between is skipped.
    out = list(ShardWriter(pafs.LocalFileSystem(), str(tmp_path), "jsonl.gz")([rows[:1], rows[:0], rows[1:]]))
    files = {p.name: p.read_bytes() for p in sorted(tmp_path.iterdir())}
    assert sorted(files) == ["part-00000.jsonl.gz", "part-00001.jsonl.gz"]
    assert gzip.decompress(files["part-00000.jsonl.gz"]).decode("utf-8") == lines[0] + "\n" + lines[1] + "\n"
    assert gzip.decompress(files["part-00001.jsonl.gz"]) == b'{"doc_id":"c"}\n'
    assert len(out) == 1 and out[0].to_dict("records") == [
        {
            "shard": 0,
            "name": "part-00000.jsonl.gz",
            "docs": 2,
            "bytes": len(files["part-00000.jsonl.gz"]),
            "uncompressed_bytes": 27 + 15,  # UTF-8 bytes and a newline per line
            "sha256": hashlib.sha256(files["part-00000.jsonl.gz"]).hexdigest(),
            "first_rank": 1,
            "last_rank": 2,
        },
        {
            "shard": 1,
            "name": "part-00001.jsonl.gz",
            "docs": 1,
            "bytes": len(files["part-00001.jsonl.gz"]),
            "uncompressed_bytes": 15,
            "sha256": hashlib.sha256(files["part-00001.jsonl.gz"]).hexdigest(),
            "first_rank": 3,
            "last_rank": 3,
        },
    ]
    assert list(ShardWriter(pafs.LocalFileSystem(), str(tmp_path), "jsonl.gz")([rows[:0]])) == []


def test_export_jsonl_shards_and_manifest(lake):
    lh, conf, docs, tmp = lake.lh, lake.conf, lake.docs, lake.tmp
    shard_mb = 3000 / (1 << 20)
    code, out = _run(export, conf(export={"shard_mb": shard_mb}))
    assert code == EXIT_OK, out
    root = tmp / "export"  # default: beside the warehouse
    assert sorted(p.name for p in root.iterdir()) == ["betr", "blend"]  # no temporary folders left
    target = int(shard_mb * (1 << 20))
    for s in ("betr", "blend"):
        folder = root / s
        got = _read_jsonl(folder)
        want = _expected_rows(lh, docs, s)
        assert got == want  # exactly the selected documents, in rank order, every field
        man = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        sel = _selected(lh, s)
        assert man["documents"] == len(sel) and man["tokens"] == int(sel["tokens"].sum())
        assert man["selection"]["run_id"] == sel["run_id"].iloc[0]
        assert man["table_versions"] == {
            **json.loads(sel["table_versions"].iloc[0]),
            "gold.selection": lh.version(gold.SELECTION),
        }
        names = sorted(p.name for p in folder.glob("part-*"))
        assert [m["name"] for m in man["shards"]] == names
        assert names == [f"part-{i:05d}.jsonl.gz" for i in range(len(names))]
        assert len(names) >= 2
        max_line = max(len(json.dumps(r, ensure_ascii=False).encode()) + 1 for r in got)
        for i, m in enumerate(man["shards"]):
            raw = (folder / m["name"]).read_bytes()
            assert m["bytes"] == len(raw) and m["sha256"] == hashlib.sha256(raw).hexdigest()
            text = gzip.decompress(raw)
            assert m["docs"] == len(text.splitlines()) and m["uncompressed_bytes"] == len(text)
            if i < len(man["shards"]) - 1:  # within one line of the target
                assert target - max_line < m["uncompressed_bytes"] < target + max_line
        assert sum(m["docs"] for m in man["shards"]) == man["documents"]
        assert man["uncompressed_bytes"] == sum(m["uncompressed_bytes"] for m in man["shards"])
        exp = pd.DataFrame(want)
        for key in ("domain", "source"):
            g = exp.groupby(exp[key].fillna("\0"))["n_tokens"].agg(["count", "sum"])
            comp = {
                (c[key] if c[key] is not None else "\0"): (c["docs"], c["tokens"])
                for c in man["composition"][key]
            }
            assert comp == {k: (int(v["count"]), int(v["sum"])) for k, v in g.iterrows()}


def test_export_parquet_replaces_a_strategy(lake, capsys):
    lh, conf, docs, tmp = lake.lh, lake.conf, lake.docs, lake.tmp
    root = tmp / "export"
    if not (root / "blend").exists():  # run alone: the jsonl export made the folders
        assert _run(export, conf(export={}))[0] == EXIT_OK
    untouched = {p.name: p.read_bytes() for p in (root / "blend").iterdir()}
    code, out = _run(export, conf(export={"format": "parquet", "shard_mb": 0.004, "strategy": "betr"}))
    assert code == EXIT_OK, out
    assert sorted(p.name for p in root.iterdir()) == ["betr", "blend"]
    assert {p.name: p.read_bytes() for p in (root / "blend").iterdir()} == untouched
    assert not list((root / "betr").glob("*.jsonl.gz"))  # the old folder was replaced, not merged into
    files = sorted((root / "betr").glob("part-*.parquet"))
    assert len(files) >= 2
    table = [row for f in files for row in pq.read_table(f).to_pylist()]
    assert table == [{**r, "messages": None} for r in _expected_rows(lh, docs, "betr")]
    man = json.loads((root / "betr" / "manifest.json").read_text())
    assert [m["docs"] for m in man["shards"]] == [pq.ParquetFile(f).metadata.num_rows for f in files]
    assert man["format"] == "parquet" and man["documents"] == len(table)

    # an unknown strategy is a usage error and writes nothing
    code, _ = _run(export, conf(export={"path": str(tmp / "none"), "strategy": "rds"}))
    assert code == EXIT_USAGE and "no rows for it" in capsys.readouterr().err
    assert not (tmp / "none").exists()
    # object stores are refused before Spark starts: the atomic swap is a folder rename
    assert _run(export, conf(export={"path": "s3://bucket/export"}))[0] == EXIT_USAGE
    assert "local or mounted folder" in capsys.readouterr().err


# Last: it leaves gold.selection's latest gate failed, which later stages (rightly) refuse to read.
def test_missing_doc_fails_gate_and_publishes_nothing(lake, spark, capsys):
    lh = lake.lh
    before = lh.version(gold.SELECTION)
    ghost = pd.DataFrame(
        [{"doc_id": "ghost", "domain": "a.com", "n_tokens": 5, "strategy": "betr", "score": 9.0}]
    )
    _write_scores(spark, lh, pd.concat([lake.scores, ghost], ignore_index=True))
    try:
        code, _ = _run(selection, lake.conf(select={"strategies": ["betr"], "token_budget": BUDGET}))
        assert code == EXIT_GATE
        err = capsys.readouterr().err
        assert "_missing_doc" in err and "ghost" in err
        assert lh.version(gold.SELECTION) == before
        assert "ghost" not in set(lh.read(gold.SELECTION).toPandas()["doc_id"])
        # and export refuses to read a table whose latest gate failed
        assert _run(export, lake.conf(export={"path": str(lake.tmp / "refused")}))[0] == EXIT_GATE
        assert "latest gate failed" in capsys.readouterr().err
        assert not (lake.tmp / "refused").exists()
    finally:
        _write_scores(spark, lh, lake.scores)
