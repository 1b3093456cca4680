"""Ingest on the generated sample corpus: every record lands in documents or rejects, exactly as planted."""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path

import pytest
from deltalake import DeltaTable
from pyspark.sql import functions as F

from jobs import audit, ingest
from jobs.runtime import EXIT_OK, EXIT_USAGE, run_job
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
    assert (run["rows_in"], run["rows_out"]) == (counts["records_total"], counts["records_total"])
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
    assert len(truth["counts"]) and truth["counts"]["domains"] == len({r["domain"] for r in rows})


def test_rerun_adds_nothing(ingested, capsys):
    lh, truth, out, args = ingested
    versions = {s.name: lh.version(s) for s in bronze.TABLES}
    again = argparse.Namespace(**{**vars(args), "run_id": None})
    assert run_job(ingest.STAGE, again, ingest.ingest) == EXIT_OK
    text = capsys.readouterr().out
    assert "files read: 0 (skipped 6 already ingested)" in text
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
    # The run never recorded success, so its files are read again; the same run id makes the commits no-ops.
    assert run_job(ingest.STAGE, args, ingest.ingest) == EXIT_OK
    assert "already committed" in capsys.readouterr().out
    assert (lh.read(bronze.DOCUMENTS).count(), lh.read(bronze.REJECTS).count()) == (5, 1)
    assert (lh.version(bronze.DOCUMENTS), lh.version(bronze.REJECTS)) == (1, 1)


def test_bad_inputs_exit_2_naming_the_key(tmp_path, capsys):
    conf = write_conf(
        tmp_path / "c.yaml", tmp_path / "wh", [{"name": "t", "path": str(tmp_path / "none/*.jsonl")}]
    )
    assert ingest.main(["--conf", str(conf)]) == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == f"error: {conf}: ingest.inputs[0].path: no files match '{tmp_path}/none/*.jsonl'"
    (tmp_path / "x.txt").write_text("hello\n")
    conf = write_conf(tmp_path / "c.yaml", tmp_path / "wh", [{"name": "t", "path": str(tmp_path / "*.txt")}])
    assert ingest.main(["--conf", str(conf)]) == EXIT_USAGE
    assert "ingest.inputs[0].format: cannot tell the format of" in capsys.readouterr().err


def test_large_plain_file_is_split_and_loses_nothing(spark, tmp_path):
    raw = tmp_path / "big.jsonl"
    with open(raw, "w") as fh:
        for i in range(800):
            fh.write(json.dumps({"id": str(i), "text": f"row {i} " + "word " * (i % 17)}) + "\n")
    files = ingest.list_inputs(
        __import__("jobs.config", fromlist=["IngestConf"]).IngestConf(
            inputs=[{"name": "t", "path": str(raw)}]
        )
    )
    splits = ingest.plan_splits(files, split_bytes=8192)
    assert len(splits) == -(-os.path.getsize(raw) // 8192)
    from udfs.readers import ReaderOptions

    parsed = ingest.read_raw(
        spark, splits, ReaderOptions(1000, 5000), task_bytes=8192, sizes={str(raw): os.path.getsize(raw)}
    )
    assert parsed.rdd.getNumPartitions() == len(splits)
    docs = parsed.filter("kind = 'doc'")
    assert docs.count() == 800
    assert docs.select("source_id").distinct().count() == 800
    assert parsed.filter("kind = 'file'").agg(F.sum("n_records")).first()[0] == 800


@pytest.mark.slow
def test_spark_submit_runs_the_job_file(tmp_path):
    import subprocess
    import sys

    from tests.conftest import ROOT

    raw = tmp_path / "a.jsonl"
    raw.write_text(
        json.dumps({"id": "1", "text": "one"}) + "\n" + json.dumps({"id": "1", "text": "dup"}) + "\n"
    )
    conf = write_conf(tmp_path / "c.yaml", tmp_path / "wh", [{"name": "t", "path": str(raw)}])
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("PYSPARK_GATEWAY_PORT", None)
    proc = subprocess.run(
        [
            str(bindir / "spark-submit"),
            "--master",
            "local[1]",
            str(ROOT / "jobs" / "ingest.py"),
            "--conf",
            str(conf),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "records read: 2 = accepted 1 + rejected 1" in proc.stdout
    assert "rejected by reason: duplicate_doc_id 1" in proc.stdout
