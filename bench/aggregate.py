"""Seconds of the perplexity-correlation SQL against the numpy formulas on the same matrix, and how both grow.

    .venv/bin/python bench/aggregate.py [--models 100] [--domains 20000] [--scale 10] [--workers 2]

The matrix: X, ``--models`` x ``--domains`` bits-per-byte values (a shared per-domain level plus a
per-model offset and noise, rounded to 4 decimals so that some domains have tied models, as real bpb
values sometimes do), and y, one benchmark error per model (a noisy function of the models' mean bpb,
rounded to 3 decimals: ties there too). Seeded; the same X and y go to both sides.

Measured in this run, at ``--domains`` and again at ``--scale`` times as many (the models stay):

  * SQL: ``jobs.methods.pplcorr.estimates(bpb, errors)``, i.e. ``jobs/sql/domain_estimates.sql``, all
    five estimators in one query over the long matrix ``[model_id, domain, bpb]`` (N·D rows), run to the
    end into Spark's ``noop`` sink on ``local[--workers]``. The long matrix is read from a Parquet file and
    cached in memory before the clock starts (session start and that load are not timed); this is the
    correlation step alone, without the bpb aggregation over documents that precedes it in the stage.
  * numpy: the five formulas of ``tests/fixtures/pplcorr_reference.py`` (the reference package's
    ``perplexity_correlations.estimation`` loops: per model, a vectorised pass over the rows after it) on
    the N x D array in this process, one thread per BLAS default. Each estimator is timed; the sum is
    the baseline.

Printed: seconds of each side, the ratio SQL / numpy at both sizes, the growth of each side from 1x to
``--scale``x (linear in D would be ``--scale``), and the agreement of all five estimates (max |SQL - numpy|
over every domain; the tests hold it under 1e-9). SQL's cost is dominated by sign_sign, the one estimator
that pairs each domain's models (N(N-1)/2 rows per domain); the other four are one pass over the rows.
About 3-4 minutes with the defaults on 2 cores (most of it the SQL at 10x), with ~4 GB for the driver.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

import pplcorr_reference as oracle  # noqa: E402


def matrix(n_models: int, n_domains: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """X (models x domains, bpb) and y (errors), seeded."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(0.7, 1.3, n_domains)
    skill = rng.normal(0, 0.08, n_models)
    X = np.round(level[None, :] + skill[:, None] + rng.normal(0, 0.03, (n_models, n_domains)), 4)
    y = np.clip(0.5 + 2 * skill + rng.normal(0, 0.05, n_models), 0.01, 0.99).round(3)
    return X, y


def model_ids(n: int) -> list[str]:
    return [f"model-{i:03d}" for i in range(n)]  # sorted = row order, as the SQL orders models


def write_long(X: np.ndarray, path: Path) -> None:
    """The long matrix as Parquet (dictionary-encoded ids), what the SQL reads."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    n, d = X.shape
    models = pa.DictionaryArray.from_arrays(
        pa.array(np.repeat(np.arange(n, dtype=np.int32), d)), pa.array(model_ids(n))
    )
    domains = pa.DictionaryArray.from_arrays(
        pa.array(np.tile(np.arange(d, dtype=np.int32), n)),
        pa.array([f"dom{j:07d}.example" for j in range(d)]),
    )
    table = pa.table({"model_id": models, "domain": domains, "bpb": pa.array(X.reshape(-1))})
    pq.write_table(table, path, row_group_size=1 << 20)


def time_numpy(X: np.ndarray, y: np.ndarray) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    secs, out = {}, {}
    for name, fn in oracle.ESTIMATORS.items():
        t0 = time.perf_counter()
        out[name] = fn(X, y)
        secs[name] = time.perf_counter() - t0
    return secs, out


def run_size(spark, n_models: int, n_domains: int, seed: int, parts: int, tmp: Path) -> dict:
    """One matrix through both sides: seconds, numpy's per estimator, and the worst disagreement."""
    from jobs.methods.pplcorr import estimates

    X, y = matrix(n_models, n_domains, seed)
    path = tmp / f"bpb-{n_domains}.parquet"
    write_long(X, path)
    bpb = spark.read.parquet(str(path)).repartition(parts, "domain").persist()
    bpb.count()
    errors = spark.createDataFrame(
        [(m, float(e)) for m, e in zip(model_ids(n_models), y, strict=True)], "model_id string, error double"
    )
    est = estimates(bpb, errors)
    t0 = time.perf_counter()
    est.write.format("noop").mode("overwrite").save()
    sql_s = time.perf_counter() - t0

    np_secs, want = time_numpy(X, y)

    got = est.select("domain", "estimator", "estimate").toPandas()
    got["j"] = got["domain"].str[3:10].astype(int)
    worst = 0.0
    for name, vec in want.items():
        g = got[got["estimator"] == name].sort_values("j")
        assert len(g) == n_domains, (name, len(g))
        worst = max(worst, float(np.max(np.abs(g["estimate"].to_numpy() - vec[g["j"].to_numpy()]))))
    bpb.unpersist()
    path.unlink()
    return {"d": n_domains, "sql": sql_s, "numpy": sum(np_secs.values()), "per": np_secs, "worst": worst}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=int, default=100, help="N, models of the pool")
    p.add_argument("--domains", type=int, default=20_000, help="D at 1x")
    p.add_argument("--scale", type=int, default=10, help="the second run has scale x D domains")
    p.add_argument("--workers", type=int, default=2, help="Spark local[N]")
    p.add_argument(
        "--driver-memory", default="4g", help="spark.driver.memory (the cached matrix lives there)"
    )
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    from jobs.config import SparkConf
    from jobs.session import get_spark

    parts = max(2, args.workers * 4)
    spark = get_spark(
        SparkConf(
            master=f"local[{args.workers}]",
            shuffle_partitions=parts,
            ui=False,
            progress=False,
            log_level="ERROR",
            conf={"spark.driver.memory": args.driver_memory},
        )
    )
    print(
        f"perplexity-correlation estimators, N = {args.models} models: SQL (local[{args.workers}], "
        f"{parts} shuffle partitions) vs numpy; load average {os.getloadavg()[0]:.1f}"
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-aggregate-") as tmp:
        # Warm-up, not timed: the first query pays for JIT compilation and code generation.
        run_size(spark, args.models, 500, args.seed, parts, Path(tmp))
        for d in (args.domains, args.domains * args.scale):
            r = run_size(spark, args.models, d, args.seed, parts, Path(tmp))
            results.append(r)
            per = ", ".join(f"{k} {v:.2f}" for k, v in r["per"].items())
            print(
                f"  {args.models} x {d:>9,}: SQL {r['sql']:7.2f} s   numpy {r['numpy']:6.2f} s ({per})   "
                f"SQL / numpy {r['sql'] / r['numpy']:5.1f}x   max |SQL - numpy| {r['worst']:.1e}"
            )
    spark.stop()
    one, big = results
    print(
        f"\ngrowth from {one['d']:,} to {big['d']:,} domains ({big['d'] / one['d']:g}x): "
        f"SQL {big['sql'] / one['sql']:.1f}x, numpy {big['numpy'] / one['numpy']:.1f}x; "
        f"ratio SQL / numpy {one['sql'] / one['numpy']:.1f}x -> {big['sql'] / big['numpy']:.1f}x"
    )
    worst = max(one["worst"], big["worst"])
    ok = worst <= 1e-9
    print(f"agreement: max |SQL - numpy| = {worst:.1e} over the 5 estimators ({'ok' if ok else 'MISMATCH'})")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
