"""Ingest throughput on the sample corpus ×10, and each Delta engine's commit overhead as a table grows.

    python bench/ingest.py [--scale 10] [--files 1000] [--copy-files 200] [--out bench/out]
                           [--html resiliparse,trafilatura,plain]

Prints, all measured in this run:
  * ingest docs/s and MB/s (raw bytes on disk and text bytes), and the same for a plain
    ``spark.read.json(...).write.parquet(...)`` of the JSONL inputs (no rejects, dedup or gate) as baseline;
    once per ``--html`` extractor (``ingest.html.extractor``; the WARC file's HTML pages are 6% of the docs);
  * for a table grown to ``--files`` Parquet files by repeated appends: Spark's write time per append (the
    staging the gate reads), the commit time per append, and their ratio at several table sizes (should stay
    a small fraction), for each engine:
      - embedded: delta-rs commits the staged files;
      - delta-spark: the same one-copy commit (the table's protocol lets delta-rs write it);
      - delta-spark, copy: a table with deletion vectors, which delta-rs must not write: delta-spark re-writes
        the staged rows with format("delta") (``--copy-files``, default 200: each commit is a full copy).
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _sample(out: Path, scale: int) -> list[dict]:
    from jobs.demo import sample_corpus

    inputs = []
    for k in range(scale):
        d = out / "raw" / f"seed-{k}"
        if not (d / "truth.json").exists():
            sample_corpus.generate(d, n_docs=5000, seed=k, max_doc_bytes=200_000)
        # One source per copy: same record ids in different copies are different documents.
        inputs.append({"name": f"sample{k}", "path": str(d / "raw" / "*")})
    return inputs


def bench_ingest(spark, out: Path, scale: int, html: str = "resiliparse") -> None:
    import yaml

    from jobs import ingest
    from jobs.runtime import run_job
    from jobs.tables import EmbeddedLakehouse
    from schemas import bronze

    inputs = _sample(out, scale)
    files = [f for i in inputs for f in glob.glob(i["path"])]
    raw_mb = sum(os.path.getsize(f) for f in files) / 1e6
    wh = out / "wh-ingest"
    shutil.rmtree(wh, ignore_errors=True)
    conf = out / "bench.yaml"
    conf.write_text(
        yaml.safe_dump(
            {
                "spark": {"master": spark.sparkContext.master},
                "storage": {"engine": "embedded", "warehouse": str(wh)},
                "ingest": {"inputs": inputs, "max_doc_bytes": 200_000, "html": {"extractor": html}},
            }
        )
    )
    args = argparse.Namespace(conf=str(conf), overrides=[], run_id=None, verbose=False)
    t0 = time.perf_counter()
    code = run_job(ingest.STAGE, args, ingest.ingest, out=open(os.devnull, "w"))
    elapsed = time.perf_counter() - t0
    assert code == 0, "ingest failed"
    lh = EmbeddedLakehouse(spark, str(wh))
    docs = lh.read(bronze.DOCUMENTS)
    n_docs = docs.count()
    text_mb = docs.agg({"n_bytes": "sum"}).first()[0] / 1e6

    # Baseline: a plain Spark job over the JSONL files alone (zstd needs native Hadoop libs: skipped).
    jsonl = [f for f in files if f.endswith(".jsonl") or f.endswith(".jsonl.gz")]
    base_out = out / "baseline"
    shutil.rmtree(base_out, ignore_errors=True)
    t0 = time.perf_counter()
    plain = spark.read.json(jsonl)
    plain.write.parquet(str(base_out))
    base_elapsed = time.perf_counter() - t0
    base_docs = spark.read.parquet(str(base_out)).count()
    base_mb = sum(os.path.getsize(f) for f in jsonl) / 1e6

    print(
        f"ingest, sample corpus x{scale}: {len(files)} files, {raw_mb:.1f} MB on disk, "
        f"{n_docs:,} docs accepted, html extractor {html}"
    )
    print(
        f"  corpuslake ingest      {elapsed:7.1f} s  {n_docs / elapsed:9.0f} docs/s  "
        f"{raw_mb / elapsed:6.2f} MB/s raw"
        f"  {text_mb / elapsed:6.2f} MB/s text  (includes rejects, dedup, 2 gates, audit)"
    )
    print(
        f"  baseline read.json     {base_elapsed:7.1f} s  {base_docs / base_elapsed:9.0f} docs/s  "
        f"{base_mb / base_elapsed:6.2f} MB/s raw  (JSONL subset, no rejects/dedup/gate)"
    )
    print(f"  ratio docs/s corpuslake / baseline: {(n_docs / elapsed) / (base_docs / base_elapsed):.2f}")


def bench_commits(
    spark,
    out: Path,
    target_files: int,
    engine: str = "embedded",
    copy: bool = False,
    files_per_write: int = 10,
) -> None:
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StringType, StructType

    from jobs.tables import open_lakehouse
    from schemas.base import TableSpec, col

    spec = TableSpec(
        "bench.commits",
        StructType([col("id", LongType(), False, "id"), col("text", StringType(), True, "text")]),
        "bench table",
    )
    wh = out / f"wh-commits-{engine}{'-copy' if copy else ''}"
    shutil.rmtree(wh, ignore_errors=True)
    lh = open_lakehouse(spark, str(wh), engine)
    df = (
        spark.range(0, 20_000, numPartitions=files_per_write)
        .select("id", F.sha2(F.col("id").cast("string"), 256).alias("text"))
        .cache()
    )
    df.count()
    if copy:
        from delta.tables import DeltaTable

        DeltaTable.create(spark).location(lh.path(spec)).addColumns(spec.schema).property(
            "delta.enableDeletionVectors", "true"
        ).execute()
        assert not lh.rs_writable(spec)
    lh.create_if_missing(spec)
    writes = target_files // files_per_write
    marks = sorted({max(1, writes // 10), writes // 4, writes // 2, writes})
    window: list[tuple[float, float]] = []
    how = "re-written by delta-spark (deletion-vector table)" if copy else "committed as staged"
    print(
        f"\n{engine} commit overhead, {how}, appends of {files_per_write} files until the table has "
        f"{target_files}:"
    )
    print(f"  {'files':>6} {'spark write s':>14} {'commit s':>9} {'commit/write':>13}")
    for i in range(1, writes + 1):
        t0 = time.perf_counter()
        staged = lh.stage(df, spec, "append", f"bench-{i}")
        t1 = time.perf_counter()
        lh.commit(staged, app_id="corpuslake.bench", txn_version=i)
        t2 = time.perf_counter()
        window.append((t1 - t0, t2 - t1))
        if i in marks:
            w = sum(a for a, _ in window) / len(window)
            c = sum(b for _, b in window) / len(window)
            print(f"  {i * files_per_write:>6} {w:>14.3f} {c:>9.3f} {c / w:>13.2f}")
            window = []
    total = lh.read(spec).count()
    assert total == writes * df.count(), total
    df.unpersist()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scale", type=int, default=10)
    p.add_argument("--files", type=int, default=1000)
    p.add_argument("--copy-files", type=int, default=200, help="table size for the delta-spark copy path")
    p.add_argument("--out", default=str(ROOT / "bench" / "out"))
    p.add_argument("--skip-ingest", action="store_true")
    p.add_argument("--html", default="resiliparse", help="comma list of html extractors to ingest with")
    args = p.parse_args(argv)
    from jobs.config import SparkConf
    from jobs.session import get_spark

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    spark = get_spark(SparkConf(master="local[*]", shuffle_partitions=8, progress=False, log_level="ERROR"))
    if not args.skip_ingest:
        for html in args.html.split(","):
            bench_ingest(spark, out, args.scale, html.strip())
    bench_commits(spark, out, args.files, "embedded")
    bench_commits(spark, out, args.files, "delta-spark")
    bench_commits(spark, out, args.copy_files, "delta-spark", copy=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
