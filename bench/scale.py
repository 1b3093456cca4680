"""How each stage grows with the pool, and whether any step funnels, at 1x, 4x and 16x the sample.

    python bench/scale.py [--base-docs 300] [--sizes 1,4,16] [--out bench/out/scale] [--partitions 8]
                          [--no-incremental]

For each size k, the sample generator writes ``k * --base-docs`` accepted documents (seed 7, the test
suite's), the test pipeline's profile (tests/fixtures/pipeline_lake.py: tiny random models, so scoring
stays quick; the token budget grows with k) runs every stage in a new process with
``corpuslake run --events`` (``--partitions`` shuffle partitions, AQE coalescing off), and its closing table
and funnel check are read back. Printed, all measured in this run (reported, never asserted):

  * per stage: seconds at each size and the growth ratio t(largest)/t(1x) beside the size ratio (a stage
    that grows like its input has a ratio near the size ratio; fixed per-run costs such as session start,
    gates and commits keep small runs' ratios well below it);
  * per size: the funnel check over clean → select (stages reading >= 2,000 shuffled records; see
    jobs/funnel.py), with each funnel named.

Then the incremental path (issue 13: adding a batch of B documents to a lake that already holds 16·B costs at
most 2x adding it to an empty lake): a batch of B = ``--base-docs`` documents from another seed (its own
input name, so its doc_ids are new) is added, with ``corpuslake run``, (a) to an empty lake and (b) to the
largest size's lake, where ingest skips the files it already read, clean de-duplicates only the new batch
against silver and scoring scores only the new documents. Printed: per stage and in all, seconds of (a) and
(b) and their ratio; the target is a total ratio of at most 2.

Results of a run are in the README ("No funnels"). About 30 minutes on 2 cores with the defaults.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "fixtures"))

MAX_DOC_BYTES = 60_000
BASE_BUDGET = 20_000  # the test profile's token budget at 1x
# A closing-table row: "clean                ok               0:44        600        600  silver.documents v1"
ROW = re.compile(
    r"^(?P<stage>[a-z_]+)\s+(?P<status>ok|failed|gate_failed|refused|not run)\s+(?P<time>[\d:]+)"
)


def _seconds(text: str) -> float:
    parts = [int(p) for p in text.split(":")]
    total = 0
    for p in parts:
        total = total * 60 + p
    return float(total)


def _run(conf: Path, log: Path, events: Path, partitions: int, budget: int) -> tuple[dict[str, float], float]:
    """``corpuslake run`` in a new process; ({stage: seconds} of the stages that ran, wall seconds)."""
    cmd = [sys.executable, "-m", "jobs.cli", "run", "--conf", str(conf), "--events", str(events)]
    cmd += ["--set", f"spark.shuffle_partitions={partitions}", "--set", f"select.token_budget={budget}"]
    env = {**os.environ, "GX_ANALYTICS_ENABLED": "false"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    log.write_text(proc.stdout + proc.stderr, encoding="utf-8")
    if proc.returncode != 0:
        raise SystemExit(f"a run failed (exit {proc.returncode}); see {log}")
    stages = {}
    table = proc.stdout.split("Delta engine:", 1)[-1]
    for line in table.splitlines():
        m = ROW.match(line.strip())
        if m and m.group("status") == "ok":
            stages[m.group("stage")] = _seconds(m.group("time"))
    return stages, wall


def run_size(k: int, base_docs: int, out: Path, partitions: int) -> dict:
    """Generate, run and read back one size; {stage: seconds}, the funnel check's text, wall seconds."""
    import pipeline_lake

    from jobs import cli, funnel
    from jobs.demo import sample_corpus

    base = out / f"x{k}"
    sample = base / "sample"
    sample_corpus.generate(sample, n_docs=k * base_docs, seed=7, max_doc_bytes=MAX_DOC_BYTES)
    conf = pipeline_lake.write_profile(base, sample, MAX_DOC_BYTES)
    events = base / "events"
    stages, wall = _run(conf, base / "run.log", events, partitions, BASE_BUDGET * k)
    report = funnel.check(events, funnel.MIN_RECORDS, groups=cli.stage_range("clean", "select"))
    return {"stages": stages, "funnel": report.text(), "ok": report.ok, "wall": wall, "conf": conf}


def _with_batch(conf: Path, batch_raw: Path, only: bool) -> None:
    """Add the batch as an ingest input named ``batch`` (its doc_ids differ from the pool's by source);
    ``only``: the batch is the lake's only input (the empty-lake case)."""
    import yaml

    profile = yaml.safe_load(conf.read_text(encoding="utf-8"))
    batch = {"name": "batch", "path": str(batch_raw / "*")}
    inputs = profile["ingest"]["inputs"]
    profile["ingest"]["inputs"] = [batch] if only else [*inputs, batch]
    conf.write_text(yaml.safe_dump(profile, sort_keys=False), encoding="utf-8")


def run_incremental(big: dict, k: int, base_docs: int, out: Path, partitions: int) -> dict:
    """Add one batch of ``base_docs`` documents to an empty lake and to the ``k``x lake; per-stage seconds."""
    import pipeline_lake

    from jobs.demo import sample_corpus

    base = out / "batch"
    sample_corpus.generate(base / "sample", n_docs=base_docs, seed=8, max_doc_bytes=MAX_DOC_BYTES)
    # (a) an empty lake (the same tiny models and profile, written afresh) whose only input is the batch
    empty = pipeline_lake.write_profile(base / "empty", base / "sample", MAX_DOC_BYTES)
    _with_batch(empty, base / "sample" / "raw", only=True)
    a, a_wall = _run(empty, base / "empty.log", base / "empty-events", partitions, BASE_BUDGET)
    # (b) the k x lake, already run once: ingest reads only the batch's files, the rest is incremental
    _with_batch(big["conf"], base / "sample" / "raw", only=False)
    budget = BASE_BUDGET * (k + 1)
    b, b_wall = _run(big["conf"], base / "grown.log", base / "grown-events", partitions, budget)
    return {"empty": a, "grown": b, "empty_wall": a_wall, "grown_wall": b_wall}


def _incremental_table(inc: dict, k: int) -> None:
    print(f"\nincremental: a batch of B documents added to an empty lake (a) and to the {k}x lake (b), s")
    print(f"{'stage':<20}{'(a) empty':>11}{f'(b) {k}x':>11}{'b/a':>8}")
    for stage in inc["empty"]:
        a, b = inc["empty"][stage], inc["grown"].get(stage)
        ratio = f"{b / a:>8.2f}" if a and b is not None else f"{'-':>8}"
        print(f"{stage:<20}{a:>11.0f}{b if b is not None else float('nan'):>11.0f}{ratio}")
    ta, tb = sum(inc["empty"].values()), sum(inc["grown"].values())
    verdict = "holds" if tb <= 2 * ta else "MISSED"
    print(f"{'total':<20}{ta:>11.0f}{tb:>11.0f}{tb / ta:>8.2f}   (target <= 2: {verdict})")
    print(
        f"{'wall, with start-up':<20}{inc['empty_wall']:>11.0f}{inc['grown_wall']:>11.0f}"
        f"{inc['grown_wall'] / inc['empty_wall']:>8.2f}"
    )


def _slopes(results: dict, sizes: list[int], base_docs: int, total: list[float]) -> None:
    """Milliseconds per added document between consecutive sizes, per stage and in all.

    The growth ratio above mixes the fixed cost of a run (session, gates, commits, model loading) with the
    per-document one; the difference between two sizes cancels the fixed part. A stage that grows linearly
    keeps the same slope from one interval to the next; a slope near 0 means the fixed cost still dominates
    (the closing table counts whole seconds, so one second over the interval is the resolution)."""
    pairs = list(zip(sizes[:-1], sizes[1:], strict=True))
    print("\nms per added document between sizes (the fixed cost cancels; equal slopes = linear growth)")
    print(f"{'stage':<20}" + "".join(f"{f'{a}x->{b}x':>12}" for a, b in pairs))
    stages = list(results[sizes[0]]["stages"]) + ["total"]
    for stage in stages:
        cells = ""
        for a, b in pairs:
            if stage == "total":
                ta, tb = total[sizes.index(a)], total[sizes.index(b)]
            else:
                ta, tb = results[a]["stages"].get(stage), results[b]["stages"].get(stage)
            ms = 1000 * (tb - ta) / ((b - a) * base_docs) if None not in (ta, tb) else None
            cells += f"{ms:>12.2f}" if ms is not None else f"{'-':>12}"
        print(f"{stage:<20}{cells}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--base-docs", type=int, default=300, help="accepted documents at 1x (at least 200)")
    p.add_argument("--sizes", default="1,4,16", help="multiples of --base-docs, smallest first")
    p.add_argument("--out", default=str(ROOT / "bench" / "out" / "scale"))
    p.add_argument("--partitions", type=int, default=8)
    p.add_argument("--no-incremental", action="store_true", help="skip the batch-added-to-a-grown-lake part")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for k in sizes:
        print(f"{k}x: {k * args.base_docs:,} documents ...", flush=True)
        results[k] = run_size(k, args.base_docs, out, args.partitions)
        print(f"  {results[k]['wall']:.0f} s; {results[k]['funnel'].splitlines()[0]}", flush=True)

    lo, hi = sizes[0], sizes[-1]
    print(f"\nper stage, seconds (closing table); growth t({hi}x)/t({lo}x), the size ratio is {hi / lo:g}")
    head = f"{'stage':<20}" + "".join(f"{f'{k}x':>9}" for k in sizes) + f"{'growth':>9}"
    print(head)
    for stage in results[lo]["stages"]:
        times = [results[k]["stages"].get(stage) for k in sizes]
        cells = "".join(f"{t:>9.0f}" if t is not None else f"{'-':>9}" for t in times)
        growth = times[-1] / times[0] if times[0] and times[-1] is not None else float("nan")
        print(f"{stage:<20}{cells}{growth:>9.2f}")
    total = [sum(results[k]["stages"].values()) for k in sizes]
    print(f"{'total':<20}" + "".join(f"{t:>9.0f}" for t in total) + f"{total[-1] / total[0]:>9.2f}")
    _slopes(results, sizes, args.base_docs, total)
    print("\nfunnel check, clean → select:")
    for k in sizes:
        print(f"  {k}x: " + results[k]["funnel"].replace("\n", "\n      "))
    ok = all(r["ok"] for r in results.values())
    if not args.no_incremental:
        print(f"\nincremental: adding {args.base_docs:,} documents to an empty lake and to the {hi}x one ...")
        inc = run_incremental(results[hi], hi, args.base_docs, out, args.partitions)
        _incremental_table(inc, hi)
        ok = ok and sum(inc["grown"].values()) <= 2 * sum(inc["empty"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
