"""load_refs: benchmark example files → ref.benchmarks (one target text per example).

Benchmark files are small (thousands of examples), so they are read on the driver and the table is
replaced as a whole on every run. Per-model benchmark accuracies (ref.model_scores) come with the
correlation stage.

Run it:  corpuslake stage load_refs --conf conf/local.yaml
"""

from __future__ import annotations

import json
import os
from collections import Counter

from jobs.gates import Output, publish
from jobs.runtime import JobContext, UsageError, job_parser, list_files, run_job
from schemas import ref

STAGE = "load_refs"


def _target_text(obj: dict, fields: list[str]) -> str:
    parts = []
    for f in fields:
        v = obj.get(f)
        if isinstance(v, list):
            parts.extend(str(x) for x in v if x is not None)
        elif v is not None:
            parts.append(str(v))
    return "\n".join(p for p in parts if p.strip())


def read_benchmarks(conf, conf_file: str | None) -> tuple[list[dict], list[str]]:
    """Rows for ref.benchmarks and the problems found (bad lines are reported, never silently skipped).

    Raises:
        UsageError: a configured path matches no file.
    """
    rows, problems = [], []
    for i, inp in enumerate(conf.refs.benchmarks):
        matches = list_files(inp.path)
        if not matches:
            raise UsageError(
                f"{conf_file or 'profile'}: refs.benchmarks[{i}].path: no files match {inp.path!r}"
            )
        for uri, _, _ in matches:
            with open(uri, encoding="utf-8") as fh:
                for line_no, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        obj = json.loads(line)
                    except json.JSONDecodeError as exc:
                        problems.append(f"{uri}:{line_no}: not JSON ({exc})")
                        continue
                    text = _target_text(obj, inp.text_fields) if isinstance(obj, dict) else ""
                    if not text:
                        problems.append(f"{uri}:{line_no}: none of {inp.text_fields} has text")
                        continue
                    name = obj.get(inp.benchmark_field) or os.path.basename(uri).split(".")[0]
                    rows.append(
                        {
                            "benchmark": str(name),
                            "split": str(obj.get(inp.split_field) or "test"),
                            "example_id": str(obj.get(inp.id_field) or f"{name}-{line_no}"),
                            "text": text,
                            "source_file": uri,
                        }
                    )
    return rows, problems


def load_refs(ctx: JobContext) -> str:
    """The stage body: read benchmark files → gate → replace ref.benchmarks."""
    if not ctx.conf.refs.benchmarks:
        return "load_refs: no refs.benchmarks in the profile; nothing to load"
    rows, problems = read_benchmarks(ctx.conf, ctx.conf.source_file)
    if problems:
        raise UsageError(f"{len(problems)} benchmark records could not be read: " + "; ".join(problems[:5]))
    for r in rows:
        r.update(load_run_id=ctx.run.run_id, loaded_at=ctx.run.started_at)
    df = ctx.spark.createDataFrame(rows, ref.BENCHMARKS.schema)
    commits = publish(
        ctx.lakehouse, ctx.run, [Output(ref.BENCHMARKS, df, "overwrite", {"expected_rows": len(rows)})]
    )
    ctx.run.rows_in = ctx.run.rows_out = len(rows)
    per = Counter(r["benchmark"] for r in rows)
    c = commits[ref.BENCHMARKS.name]
    return (
        f"load_refs run {ctx.run.run_id}: {len(rows)} benchmark examples "
        f"({', '.join(f'{k} {v}' for k, v in sorted(per.items()))}) -> ref.benchmarks v{c.version}"
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``corpuslake-load-refs`` and ``spark-submit jobs/load_refs.py``."""
    args = job_parser(STAGE, "Load benchmark examples into ref.benchmarks.").parse_args(argv)
    return run_job(STAGE, args, load_refs)


if __name__ == "__main__":
    raise SystemExit(main())
