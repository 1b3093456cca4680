"""Ingest on the generated sample corpus: every record lands in documents or rejects, exactly as planted."""

from __future__ import annotations

import argparse
import bz2
import gzip
import json
import lzma
import os
from collections import Counter
from pathlib import Path

import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F

from jobs import audit, cli, ingest, ingest_read
from jobs.runtime import EXIT_ERROR, EXIT_OK, EXIT_USAGE, run_job
from jobs.tables import EmbeddedLakehouse
from schemas import audit as audit_schemas
from schemas import bronze
from tests.conftest import write_conf


def _rel(df, out):
    return df.withColumn("file", F.regexp_replace("source_file", "^" + str(out) + "/", ""))


def test_reconciliation_matches_planted_counts(ingested):
    lh, truth, out, _ = ingested
    counts = truth["counts"]
    docs, rejects = lh.read(bronze.DOCUMENTS), lh.read(bronze.REJECTS)
    assert docs.count() == counts["expected_accepted"]
    assert rejects.count() == counts["expected_rejected"]
    assert docs.count() + rejects.count() == counts["records_total"]
    got = Counter(
        {r["reason"]: r["n"] for r in rejects.groupBy("reason").agg(F.count("*").alias("n")).collect()}
    )
    assert got == Counter({k: v for k, v in counts["rejected_by_reason"].items() if v})
    run = lh.read(audit_schemas.RUNS).filter("run_id = 'ingest-1' and status = 'succeeded'").first()
    # Records read = accepted + rejected + skipped: the WET's warcinfo and the WARC's request record.
    assert (run["rows_in"], run["rows_out"]) == (counts["records_total"] + 2, counts["records_total"])
    assert "skipped by type: request 1, warcinfo 1" in run["message"]
    assert run["tables_written"] == {"bronze.documents": 1, "bronze.rejects": 1}
    gates = lh.read(audit_schemas.EXPECTATIONS).filter("run_id = 'ingest-1'").collect()
    assert sorted((g["table_name"], g["success"], g["table_version"]) for g in gates) == [
        ("bronze.documents", True, 1),
        ("bronze.rejects", True, 1),
    ]


def test_every_planted_reject_found_with_reason_and_position(ingested):
    lh, truth, out, _ = ingested
    got = {
        (r["file"], r["record_number"], r["reason"])
        for r in _rel(lh.read(bronze.REJECTS), out).select("file", "record_number", "reason").collect()
    }
    want = {(r["file"], r["record_number"], r["reason"]) for r in truth["rejects"]}
    assert got == want


def test_each_input_format_lands_per_file(ingested):
    lh, truth, out, _ = ingested
    per_file = Counter(
        {
            r["file"]: r["n"]
            for r in _rel(lh.read(bronze.DOCUMENTS), out)
            .groupBy("file")
            .agg(F.count("*").alias("n"))
            .collect()
        }
    )
    want = Counter({f: c["accepted"] for f, c in truth["counts"]["by_file"].items() if c["accepted"]})
    assert per_file == want
    assert {Path(f).suffix for f in per_file} >= {".jsonl", ".gz", ".zst", ".parquet"}


def test_document_fields(ingested):
    lh, truth, out, _ = ingested
    rows = (
        _rel(lh.read(bronze.DOCUMENTS), out)
        .select("source_id", "domain", "file", "n_bytes", "text", "doc_id", "meta", "ingest_run_id")
        .collect()
    )
    by_id = {r["source_id"]: r for r in rows}
    assert set(by_id) == set(truth["docs"])
    for sid, want in truth["docs"].items():
        r = by_id[sid]
        assert (r["domain"], r["file"]) == (want["domain"], want["file"]), sid
        assert r["n_bytes"] == len(r["text"].encode("utf-8"))
        assert r["ingest_run_id"] == "ingest-1"
        assert isinstance(json.loads(r["meta"]), dict)
    assert len({r["doc_id"] for r in rows}) == len(rows)
    # Chat records (the instruction pool) have no URL, so no domain.
    assert len(truth["counts"]) and truth["counts"]["domains"] == len({r["domain"] for r in rows} - {None})


def test_instruction_pool_lands_as_chat_documents_and_malformed_rejects(ingested):
    lh, truth, out, _ = ingested
    pool = truth["instruct"]
    docs = _rel(lh.read(bronze.DOCUMENTS), out).filter(F.col("file") == pool["file"])
    got = {r["source_id"]: r for r in docs.select("source_id", "format", "messages", "meta").collect()}
    want = {rid: name for name, fam in pool["families"].items() for rid in fam["ids"]}
    assert len(got) == len(want) == 48 and set(got) == set(want)
    assert {r["format"] for r in got.values()} == {"chat"}
    assert all(json.loads(r["meta"]) == {"dataset": f"demo-{want[sid]}"} for sid, r in got.items())
    # ShareGPT records' speakers became roles: every conversation is user → assistant (after any system turn).
    assert {tuple(m["role"] for m in r["messages"] if m["role"] != "system") for r in got.values()} == {
        ("user", "assistant")
    }
    rejects = _rel(lh.read(bronze.REJECTS), out).filter(F.col("file") == pool["file"])
    assert sorted((r["record_number"], r["reason"], r["detail"]) for r in rejects.collect()) == [
        (b["record_number"], "malformed_messages", b["detail"]) for b in pool["malformed"]
    ]


def test_rerun_adds_nothing(ingested, capsys):
    lh, truth, out, args = ingested
    versions = {s.name: lh.version(s) for s in bronze.TABLES}
    again = argparse.Namespace(**{**vars(args), "run_id": None})
    assert run_job(ingest.STAGE, again, ingest.ingest) == EXIT_OK
    text = capsys.readouterr().out
    assert "files read: 0 (skipped 7 already ingested)" in text  # six web files and the instruction pool
    assert {s.name: lh.version(s) for s in bronze.TABLES} == versions
    assert lh.read(bronze.DOCUMENTS).count() == truth["counts"]["expected_accepted"]


def test_sql_names_and_delta_rs_agree(ingested, spark):
    lh, truth, out, _ = ingested
    lh.register_sql(bronze.TABLES)
    n = spark.sql("select count(*) from bronze.documents where ingest_run_id = 'ingest-1'").first()[0]
    assert n == truth["counts"]["expected_accepted"]
    assert (
        DeltaTable(lh.path(bronze.REJECTS)).to_pyarrow_table().num_rows
        == truth["counts"]["expected_rejected"]
    )


def test_retry_after_crash_between_commit_and_audit(spark, tmp_path, monkeypatch, capsys):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.jsonl").write_text(
        "".join(json.dumps({"id": str(i), "text": f"document number {i}"}) + "\n" for i in range(5))
        + "{bad\n"
    )
    conf = write_conf(tmp_path / "c.yaml", tmp_path / "wh", [{"name": "t", "path": str(raw / "*.jsonl")}])
    args = argparse.Namespace(conf=str(conf), overrides=[], run_id="crashy", verbose=False)
    real_finish = audit.finish_run

    def crash_on_success(lakehouse, run, status, message=None):
        if status == "succeeded":
            raise RuntimeError("driver lost after the commit")
        real_finish(lakehouse, run, status, message)

    monkeypatch.setattr(audit, "finish_run", crash_on_success)
    assert run_job(ingest.STAGE, args, ingest.ingest) == 1
    monkeypatch.setattr(audit, "finish_run", real_finish)
    lh = EmbeddedLakehouse(spark, str(tmp_path / "wh"))
    assert (lh.read(bronze.DOCUMENTS).count(), lh.read(bronze.REJECTS).count()) == (5, 1)
    capsys.readouterr()
    # The run never recorded success, but its commits name the files their rows came from: nothing is read
    # again, whether the retry reuses the run id or not.
    assert run_job(ingest.STAGE, args, ingest.ingest) == EXIT_OK
    assert "files read: 0 (skipped 1 already ingested)" in capsys.readouterr().out
    assert (lh.read(bronze.DOCUMENTS).count(), lh.read(bronze.REJECTS).count()) == (5, 1)
    assert (lh.version(bronze.DOCUMENTS), lh.version(bronze.REJECTS)) == (1, 1)


def test_missing_input_path_fails_before_spark_starts(tmp_path, capsys):
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw" / "a.jsonl").write_text('{"text": "here"}\n')
    inputs = [
        {"name": "a", "path": str(tmp_path / "raw/*.jsonl")},
        {"name": "b", "path": str(tmp_path / "none/*")},
    ]
    conf = write_conf(tmp_path / "c.yaml", tmp_path / "wh", inputs)
    for main in (ingest.main, lambda argv: cli.main(["stage", "ingest", *argv])):
        assert main(["--conf", str(conf)]) == EXIT_ERROR
        out = capsys.readouterr()
        assert out.err.splitlines() == [
            f"error: {conf}: ingest.inputs[1].path: no files match '{tmp_path}/none/*'"
        ]
        assert out.out == ""  # no run started: no run id, no audit row
        assert not (tmp_path / "wh").exists()


def test_bad_format_exits_2_naming_the_key(tmp_path, capsys):
    (tmp_path / "x.txt").write_text("hello\n")
    conf = write_conf(tmp_path / "c.yaml", tmp_path / "wh", [{"name": "t", "path": str(tmp_path / "*.txt")}])
    assert ingest.main(["--conf", str(conf)]) == EXIT_USAGE
    assert "ingest.inputs[0].format: cannot tell the format of" in capsys.readouterr().err
    assert not (tmp_path / "wh").exists()  # told before Spark started


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_large_plain_file_is_split_and_loses_nothing(spark, tmp_path, fmt):
    """A plain JSONL file in byte ranges (lines), a Parquet file in byte ranges (the row groups that start in
    each): every record once, numbered in the whole file."""
    records = [{"id": str(i), "text": f"row {i} " + "word " * (i % 17)} for i in range(800)]
    raw = tmp_path / f"big.{fmt}"
    if fmt == "jsonl":
        raw.write_text("".join(json.dumps(r) + "\n" for r in records))
    else:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist(records), raw, row_group_size=50)  # 16 row groups
    files = ingest.list_inputs(
        __import__("jobs.config", fromlist=["IngestConf"]).IngestConf(
            inputs=[{"name": "t", "path": str(raw)}]
        )
    )
    splits = ingest.plan_splits(files, split_bytes=8192)
    assert len(splits) == -(-os.path.getsize(raw) // 8192) > 1
    from udfs.splits import ReaderOptions

    parsed = ingest.read_raw(
        spark, splits, ReaderOptions(1000, 5000), task_bytes=8192, sizes={str(raw): os.path.getsize(raw)}
    )
    assert parsed.rdd.getNumPartitions() == len(splits)
    docs = parsed.filter("kind = 'doc'")
    assert docs.count() == 800
    assert docs.select("source_id").distinct().count() == 800
    assert parsed.filter("kind = 'file'").agg(F.sum("n_records")).first()[0] == 800
    # Line numbers per file: each split's rows get the lines of the file's earlier splits added.
    from jobs.ingest_read import number_records, record_counts, rows_per_file, split_summaries

    summaries = split_summaries(parsed)
    assert len(summaries) == len(splits)
    assert (
        sum(r.n_records > 0 for r in summaries) >= len(splits) - 1
    )  # (Parquet's footer may be a range alone)
    numbered = number_records(parsed, summaries).filter("kind = 'doc'")
    assert {(int(r["source_id"]) + 1, r["record_number"]) for r in numbered.collect()} == {
        (i, i) for i in range(1, 801)
    }
    assert rows_per_file(summaries) == Counter({str(raw): 800})
    assert record_counts(summaries, [str(raw)]) == (800, Counter())
    assert record_counts(summaries, ["elsewhere"]) == (0, Counter())


def test_duplicate_doc_ids_keep_the_first_occurrence_and_name_the_earlier_run(spark):
    from jobs.ingest_read import _DUP_COLUMNS, dedup_documents

    def doc(file, n, doc_id, text, run=None):
        return ("doc", "s", file, 0, n, n * 10, doc_id, text, run)

    cols = [*_DUP_COLUMNS, "text", "ingest_run_id"]
    existing = spark.createDataFrame(
        [doc("old", 1, "a", "A", "run-1"), doc("old", 2, "z", "Z", "run-0"), doc("old", 3, "b", "B", "me")],
        "kind string, source string, source_file string, split_start long, record_number long, "
        "byte_offset long, doc_id string, text string, ingest_run_id string",
    ).select(*cols)
    batch = [
        doc("f2", 1, "c", "c in f2"),  # the second c: f2 sorts after f1
        doc("f1", 3, "c", "c in f1, line 3"),
        doc("f1", 1, "c", "c in f1, line 1"),  # the first c
        doc("f1", 2, "a", "an a already in bronze"),
        doc("f1", 4, "b", "b is only in this run's own rows"),
        doc("f1", 5, "d", "unique"),
    ]
    docs = spark.createDataFrame(batch, existing.schema).drop("ingest_run_id")
    keep, dups, suspects = dedup_documents(existing, "me", 4)(docs)
    try:
        got = {
            (r["source_file"], r["record_number"], r["detail"], r["snippet"])
            for r in dups.select("source_file", "record_number", "reason", "detail", "snippet").collect()
            if r["reason"] == "duplicate_doc_id"
        }
        assert got == {
            ("f1", 3, "doc_id first seen at f1:1", "c in"),
            ("f2", 1, "doc_id first seen at f1:1", "c in"),
            ("f1", 2, "doc_id already in bronze.documents from run run-1", "an a"),
        }
        assert dups.count() == 3
        assert sorted((r["source_file"], r["record_number"]) for r in keep.collect()) == [
            ("f1", 1),
            ("f1", 4),
            ("f1", 5),
        ]
        # Only doc_ids seen twice or seen before are ranked: z is in bronze only, b only in this run's rows.
        assert sorted(r["doc_id"] for r in suspects.collect()) == ["a", "c"]
    finally:
        suspects.unpersist()


def test_crawl_formats_through_the_job(spark, tmp_path, capsys):
    """format: auto on WAT, ARC and one-gzip-stream WET files; skipped records counted by type in the summary
    and in audit; a field path that never resolves is a warning; an empty file alone commits nothing."""
    from tests.test_readers import _arc, _archive, _wet_records

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "empty.jsonl").write_bytes(b"")
    wh = tmp_path / "wh"
    inputs = [{"name": "crawl", "path": str(raw / "*")}]
    conf = write_conf(tmp_path / "c.yaml", wh, inputs)
    args = argparse.Namespace(conf=str(conf), overrides=[], run_id=None, verbose=False)
    assert run_job(ingest.STAGE, args, ingest.ingest) == EXIT_OK
    out = capsys.readouterr().out
    assert "records read: 0 = accepted 0 + rejected 0 + skipped 0" in out
    lh = EmbeddedLakehouse(spark, str(wh))
    assert [lh.version(s) for s in bronze.TABLES] == [None, None]  # no empty table versions

    (raw / "c.warc.wet.gz").write_bytes(gzip.compress(_archive(_wet_records(5), False)[0]))
    wat = [("warcinfo", "", b"software: t\r\n", "application/warc-fields")] + [
        ("metadata", f"https://w.example.com/{i}", b"{}", "application/json") for i in range(4)
    ]
    (raw / "c.warc.wat.gz").write_bytes(_archive(wat, True)[0])
    page = b"<html><head><title>Old</title></head><body><p>An old page from the archive.</p></body></html>"
    (raw / "old.arc.gz").write_bytes(
        _arc([("http://www.example.net/a.html", "1.2.3.4", "19990101000000", b"text/html", page)])
    )
    nested = raw / "nested"
    nested.mkdir()
    (nested / "d.jsonl").write_text(
        "".join(
            json.dumps({"text": f"doc {i}", "metadata": {"url": f"https://d.example.org/{i}"}}) + "\n"
            for i in range(3)
        )
    )
    inputs.append({"name": "dolma", "path": str(nested / "*.jsonl"), "fields": {"url": "metadata.link"}})
    # A .json export that holds one pretty-printed array (pandas' to_json(orient="records", indent=2)).
    export = [
        {"text": "exported one", "url": "https://e.example.com/1"},
        ["not", "a", "record"],
        {"text": "two"},
    ]
    (raw / "export.json").write_text(json.dumps(export, indent=2))
    # bz2 (as two streams, as pbzip2 writes it) and xz: told from the names, read to the end.
    dump = [json.dumps({"id": f"w{i}", "text": f"wiki page {i}"}).encode() + b"\n" for i in range(3)]
    (raw / "wiki.jsonl.bz2").write_bytes(bz2.compress(dump[0]) + bz2.compress(b"".join(dump[1:])))
    (raw / "more.ndjson.xz").write_bytes(lzma.compress(b'{"text": "from an xz file"}\n'))
    write_conf(conf, wh, inputs)
    assert run_job(ingest.STAGE, args, ingest.ingest) == EXIT_OK
    out = capsys.readouterr().out
    assert "files read: 7 (skipped 1 already ingested)" in out
    assert "records read: 23 = accepted 15 + rejected 1 + skipped 7" in out
    (rej,) = lh.read(bronze.REJECTS).collect()
    assert (rej["source_file"], rej["record_number"], rej["reason"]) == (
        str(raw / "export.json"),
        2,
        "not_an_object",
    )
    assert "skipped by type: metadata 4, warcinfo 3" in out  # WET, WAT and ARC each have their warcinfo
    assert (
        f"warning: fields.url path 'metadata.link' resolved in none of the 3 records of {nested / 'd.jsonl'}"
        in out
    )
    docs = lh.read(bronze.DOCUMENTS)
    assert docs.count() == 15
    compressed = docs.filter("source_file rlike '[.](bz2|xz)$'").orderBy("text").collect()
    assert [(d["source_id"], d["text"]) for d in compressed] == [
        (None, "from an xz file"),
        *[(f"w{i}", f"wiki page {i}") for i in range(3)],
    ]
    exported = docs.filter("source_file like '%export.json'").orderBy("text").collect()
    assert [(d["text"], d["domain"]) for d in exported] == [("exported one", "example.com"), ("two", None)]
    arc = docs.filter("source_file like '%old.arc.gz'").first()
    assert (arc["url"], arc["domain"]) == ("http://www.example.net/a.html", "example.net")
    assert json.loads(arc["meta"])["warc_date"] == "1999-01-01T00:00:00Z"
    assert docs.filter("source = 'dolma' and url is null").count() == 3
    run = lh.read(audit_schemas.RUNS).filter("stage = 'ingest' and status = 'succeeded'").orderBy("ended_at")
    last = run.collect()[-1]
    assert (last["rows_in"], last["rows_out"]) == (23, 16)


def test_a_spark_output_folder_is_read_without_its_markers(spark, tmp_path, capsys):
    """``path`` naming a folder reads every file below it; Spark's ``_SUCCESS``, ``.crc`` files and
    ``_temporary/`` are left out, as Spark leaves them, and the summary says so. Object-store URIs (here
    ``file://``) list the same way."""
    from jobs.runtime import list_files

    out = tmp_path / "spark-out"
    for i in range(2):
        part = out / f"part-0000{i}-x.json.gz"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_bytes(gzip.compress(json.dumps({"text": f"spark part {i}"}).encode() + b"\n"))
        (out / f".part-0000{i}-x.json.gz.crc").write_bytes(b"crc")
    (out / "_SUCCESS").write_bytes(b"")
    (out / "_temporary" / "0").mkdir(parents=True)
    (out / "_temporary" / "0" / "part-00009-x.json").write_text('{"text": "a task that never committed"}\n')
    markers = [str(out / n) for n in (".part-00000-x.json.gz.crc", ".part-00001-x.json.gz.crc", "_SUCCESS")]
    unfinished = str(out / "_temporary" / "0" / "part-00009-x.json")
    parts = [str(out / f"part-0000{i}-x.json.gz") for i in range(2)]
    # A local "*" stays in its folder; a folder, and an object-store "*", reach every file below.
    for pattern, prefix, left_out in (
        (str(out), "", [*markers, unfinished]),
        (f"{out}/*", "", markers),
        (f"file://{out}/*", "file://", [*markers, unfinished]),
    ):
        ignored: list[str] = []
        assert [u for u, _, _ in list_files(pattern, ignored)] == [prefix + p for p in parts]
        assert ignored == sorted(prefix + p for p in left_out)
    # Named exactly, a file is read whatever its name.
    assert [u for u, _, _ in list_files(str(out / "_SUCCESS"))] == [str(out / "_SUCCESS")]

    wh = tmp_path / "wh"
    conf = write_conf(tmp_path / "c.yaml", wh, [{"name": "spark", "path": str(out)}])
    args = argparse.Namespace(conf=str(conf), overrides=[], run_id=None, verbose=False)
    assert run_job(ingest.STAGE, args, ingest.ingest) == EXIT_OK
    printed = capsys.readouterr().out
    assert "records read: 2 = accepted 2 + rejected 0 + skipped 0" in printed
    assert "note: ignored 4 file(s) whose name or folder starts with '_' or '.'" in printed
    texts = sorted(r["text"] for r in EmbeddedLakehouse(spark, str(wh)).read(bronze.DOCUMENTS).collect())
    assert texts == ["spark part 0", "spark part 1"]


def test_summary_lists_eight_reasons_then_how_many_more():
    counts = Counter({f"reason_{i}": 10 - i for i in range(10)})
    assert ingest._top(counts) == ", ".join(f"reason_{i} {10 - i}" for i in range(8)) + ", … 2 more"
    assert ingest._top(Counter({"b": 1, "a": 1, "c": 5})) == "c 5, a 1, b 1"


def test_invalid_field_path_is_a_conf_error_naming_the_key(tmp_path, capsys):
    (tmp_path / "a.jsonl").write_text('{"text": "x"}\n')
    for bad in ("metadata.", ".url", "metadata..url"):
        conf = write_conf(
            tmp_path / "c.yaml",
            tmp_path / "wh",
            [{"name": "t", "path": str(tmp_path / "a.jsonl"), "fields": {"url": bad}}],
        )
        assert ingest.main(["--conf", str(conf)]) == EXIT_USAGE
        err = capsys.readouterr().err
        assert f"{conf}: ingest.inputs[0].fields.url: Value error, {bad!r} is not a field path" in err


def test_commit_bytes_ingests_in_batches_with_the_rows_of_one_run(spark, tmp_path, capsys, python):
    """ingest.commit_bytes: three files, each its own batch (cached, checked and committed on its own). A run
    SIGKILLed after its first batch's commits keeps that batch; the rerun reads only the other two files, in
    two batches, and the tables hold the rows one batch of all three gives (a duplicate of an earlier batch's
    document is rejected)."""
    from tests.conftest import run_killed

    raw = tmp_path / "raw"
    raw.mkdir()
    for k in range(3):
        recs = [{"id": f"f{k}-{i}", "text": f"document {i} of file {k}"} for i in range(4)]
        recs.append({"id": "shared", "text": "the same id in every file"})  # kept once: file 0's
        lines = [json.dumps(r) for r in recs] + ['{"id": "broken']
        (raw / f"part-{k}.jsonl").write_text("\n".join(lines) + "\n")
    inputs = [{"name": "src", "path": str(raw / "*.jsonl")}]
    size = max(f.stat().st_size for f in raw.iterdir())

    def tables(wh):
        lh = EmbeddedLakehouse(spark, str(wh))
        docs = sorted((r["doc_id"], r["source_file"], r["text"]) for r in lh.read(bronze.DOCUMENTS).collect())
        rejects = sorted(
            (r["source_file"], r["record_number"], r["reason"]) for r in lh.read(bronze.REJECTS).collect()
        )
        return docs, rejects, lh.version(bronze.DOCUMENTS), lh.version(bronze.REJECTS)

    conf = write_conf(tmp_path / "one.yaml", tmp_path / "one", inputs)
    args = argparse.Namespace(conf=str(conf), overrides=[], run_id=None, verbose=False)
    assert run_job(ingest.STAGE, args, ingest.ingest) == EXIT_OK
    assert "records read: 18 = accepted 13 + rejected 5 + skipped 0" in capsys.readouterr().out
    one = tables(tmp_path / "one")
    assert len(one[0]) == 13 and [r[2] for r in one[1]].count("duplicate_doc_id") == 2
    assert [d[1] for d in one[0] if d[2] == "the same id in every file"] == [str(raw / "part-0.jsonl")]
    assert one[2:] == (1, 1)  # version 0 is the empty table, then one commit per table

    wh = tmp_path / "killed"
    conf = write_conf(tmp_path / "killed.yaml", wh, inputs, commit_bytes=size)
    proc = run_killed(python, ["jobs.ingest", "--conf", str(conf)], f"after_commit:{bronze.REJECTS.name}:1")
    assert proc.returncode == -9, proc.stderr[-2000:]
    lh = EmbeddedLakehouse(spark, str(wh))
    assert {r["source_file"] for r in lh.read(bronze.DOCUMENTS).collect()} == {str(raw / "part-0.jsonl")}
    args = argparse.Namespace(conf=str(conf), overrides=[], run_id=None, verbose=False)
    assert run_job(ingest.STAGE, args, ingest.ingest) == EXIT_OK
    out = capsys.readouterr().out
    assert "files read: 2 (skipped 1 already ingested)" in out
    assert "records read: 12 = accepted 8 + rejected 4 + skipped 0" in out
    # The same rows as one batch, in one commit per batch and table: the killed run's, then the rerun's two.
    assert tables(wh) == (*one[:2], 3, 3)


def test_file_batches_cut_in_listing_order():
    files = [
        ingest_read.InputFile("s", f"f{i}", "jsonl", size, 0, ("text", None, None))
        for i, size in enumerate([5, 5, 20, 1, 9])
    ]
    cut = [[f.uri for f in b] for b in ingest.file_batches(files, 10)]
    assert cut == [["f0", "f1"], ["f2"], ["f3", "f4"]]
    assert ingest.file_batches(files, None) == [files] and ingest.file_batches([], 10) == []
