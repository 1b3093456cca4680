"""load_refs: benchmark example files → ref.benchmarks; per-model benchmark accuracies → ref.model_scores.

Benchmark files are JSON lines, plain or compressed (``.gz``, ``.zst``, ``.bz2``, ``.xz``, or told by
content); each example's target text joins dotted field paths named in the profile, by a preset, or by the
preset whose layout the file has (``udfs.benchmarks``), and its split comes from the profile, the record, or
the file name.

Both inputs are small (thousands of examples, a few hundred scores), so they are read on the driver and
each configured table is replaced as a whole on every run; bad lines are listed, never skipped. The scores
are gated: accuracies in [0, 1], one per (model, benchmark), and every model of the perplexity pool
(``score.perplexity.pool``) scored on every benchmark of the correlation's group
(``aggregate.domains.benchmarks``, or every benchmark in the files).

Run it:  corpuslake stage load_refs --conf conf/local.yaml
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections import Counter
from collections.abc import Callable, Iterator

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from jobs import freshness
from jobs.gates import Output, publish
from jobs.methods.heldout import eval_overlap
from jobs.runtime import JobContext, UsageError, ignored_notes, job_parser, list_files, run_job
from schemas import ref
from udfs.benchmark_items import eval_item
from udfs.benchmarks import (
    GENERIC_FIELDS,
    PRESETS,
    NotText,
    detect_preset,
    name_and_split,
    resolve,
    split_alias,
    support_text,
    target_text,
)

STAGE = "load_refs"


def _ref_files(conf) -> list[str]:
    return [i.path for i in conf.refs.benchmarks] + [i.path for i in conf.refs.model_scores]


# Rebuilt from files: the same files (size, mtime) under the same settings load the same tables.
WATCH = freshness.Watch(
    conf=("refs", "score.perplexity.pool", "aggregate.domains.benchmarks"), files=_ref_files
)


def _matches(conf_file: str | None, key: str, path: str, ignored: list[str] | None = None) -> list:
    """The files a configured path names; a path that names none is a usage error, not an empty table."""
    matches = list_files(path, ignored)
    if not matches:
        raise UsageError(f"{conf_file or 'profile'}: {key}.path: no files match {path!r}")
    return matches


def _lines(uri: str) -> Iterator[tuple[int, str | None, str | None]]:
    """(line number, text, problem) for each line of a plain or compressed file (``open_decompressed``).

    Each line is decoded as UTF-8 on its own, so a bad byte is reported with its line; a damaged compressed
    stream ends the file with one problem at the line it could not read.
    """
    from udfs.splits import open_decompressed  # ingest's opener: the same codecs and object stores

    line_no = 0
    try:
        with open_decompressed(uri) as fh:
            for raw in fh:
                line_no += 1
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    bad = raw[exc.start : exc.start + 1]
                    yield line_no, None, f"not UTF-8 (byte {exc.start + 1} of the line is {bad!r})"
                    continue
                yield line_no, text.removeprefix("\ufeff") if line_no == 1 else text, None
    except Exception as exc:  # gzip / zstd corruption, truncated streams
        yield line_no + 1, None, f"unreadable from this line on ({type(exc).__name__}: {exc})"


def _layout(inp, obj: dict) -> tuple[tuple[str, ...], str, str, str | None]:
    """(text fields, id field, how they were chosen, preset name or None) for one file of ``inp``, from its
    first record."""
    if inp.text_fields:
        return tuple(inp.text_fields), inp.id_field or "id", "text_fields", None
    if inp.preset not in (None, "auto"):
        preset, how = PRESETS[inp.preset], f"preset {inp.preset}"
    else:
        preset = detect_preset(obj)
        if preset is None:
            return GENERIC_FIELDS, inp.id_field or "id", "generic fields (no preset detected)", None
        how = f"preset {preset.name} (detected)"
    return preset.text_fields, inp.id_field or preset.id_field or "id", how, preset.name


def read_benchmarks(conf, conf_file: str | None) -> tuple[list[dict], list[str], list[str]]:
    """Rows for ref.benchmarks, the problems found (bad lines are reported, never silently skipped), and one
    line per file saying how its examples were read. Each row also carries ``eval_item``: the example as
    ``evaluate`` scores it (``udfs.benchmark_items``), or None when its answer cannot be read.

    The split of an example is the entry's ``split``, else its ``split_field`` value, else the split word in
    the file name (``mmlu_test.jsonl.gz``, ``ARC-Easy-Dev.jsonl``), else ``test``.

    Raises:
        UsageError: a configured path matches no file.
    """
    rows, problems, notes, ignored = [], [], [], []
    for i, inp in enumerate(conf.refs.benchmarks):
        matches = _matches(conf_file, f"refs.benchmarks[{i}]", inp.path, ignored)
        for uri, _, _ in matches:
            file_name, file_split = name_and_split(uri)
            stem = os.path.basename(uri).split(".")[0]
            layout = None
            splits: Counter = Counter()
            for line_no, line, problem in _lines(uri):
                if problem is not None:
                    problems.append(f"{uri}:{line_no}: {problem}")
                    continue
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    problems.append(f"{uri}:{line_no}: not JSON ({exc})")
                    continue
                if not isinstance(obj, dict):
                    problems.append(f"{uri}:{line_no}: not a JSON object")
                    continue
                if layout is None:
                    layout = _layout(inp, obj)
                fields, id_field, _, preset_name = layout
                try:
                    text = target_text(obj, fields)
                except NotText as exc:
                    problems.append(f"{uri}:{line_no}: {exc}")
                    continue
                if not text:
                    problems.append(f"{uri}:{line_no}: none of {list(fields)} has text")
                    continue
                name = inp.benchmark or obj.get(inp.benchmark_field) or file_name
                own = obj.get(inp.split_field) if inp.split_field else None
                split = inp.split or (split_alias(str(own)) if str(own or "").strip() else None)
                split = split or file_split or "test"
                example_id = resolve(obj, id_field)
                splits[split] += 1
                rows.append(
                    {
                        "benchmark": str(name),
                        "split": split,
                        "example_id": str(example_id) if example_id is not None else f"{stem}-{line_no}",
                        "text": text,
                        "support": support_text(obj, fields),
                        "source_file": uri,
                        "eval_item": eval_item(obj, preset_name),
                    }
                )
            per = ", ".join(f"{k} {v}" for k, v in sorted(splits.items())) or "no examples"
            notes.append(f"{os.path.basename(uri)}: {per}" + (f"; {layout[2]}" if layout else ""))
    return rows, problems, notes + ignored_notes(ignored)


def _records(uri: str, fmt: str) -> Iterator[tuple[int, dict | None, str | None]]:
    """(line number, record, problem) for each non-empty line of a CSV (header row) or JSON-lines file."""
    with open(uri, encoding="utf-8", newline="") as fh:
        if fmt == "csv":
            reader = csv.DictReader(fh)
            for rec in reader:
                if any(v not in (None, "") for v in rec.values()):
                    yield reader.line_num, rec, None
            return
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield line_no, None, f"not JSON ({exc})"
                continue
            yield (line_no, obj, None) if isinstance(obj, dict) else (line_no, None, "not a JSON object")


def _accuracy(v) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        x = float(str(v).strip()) if isinstance(v, str) else float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def read_model_scores(conf, conf_file: str | None) -> tuple[list[dict], list[str]]:
    """Rows for ref.model_scores and the problems found (a missing field, an accuracy that is no number).

    Accuracies outside [0, 1] and repeated (model, benchmark) pairs are read as they are: the gate
    rejects them with the offending values.

    Raises:
        UsageError: a configured path matches no file.
    """
    rows, problems = [], []
    for i, inp in enumerate(conf.refs.model_scores):
        matches = _matches(conf_file, f"refs.model_scores[{i}]", inp.path)
        fields = (inp.model_field, inp.benchmark_field, inp.accuracy_field)
        for uri, _, _ in matches:
            fmt = inp.format if inp.format != "auto" else ("csv" if uri.lower().endswith(".csv") else "jsonl")
            for line_no, rec, problem in _records(uri, fmt):
                if rec is None:
                    problems.append(f"{uri}:{line_no}: {problem}")
                    continue
                empty = [f for f in fields if rec.get(f) is None or str(rec.get(f)).strip() == ""]
                if empty:
                    problems.append(f"{uri}:{line_no}: no value for {', '.join(empty)}")
                    continue
                acc = _accuracy(rec[inp.accuracy_field])
                if acc is None:
                    problems.append(
                        f"{uri}:{line_no}: {inp.accuracy_field} {rec[inp.accuracy_field]!r} is not a number"
                    )
                    continue
                rows.append(
                    {
                        "model_id": str(rec[inp.model_field]).strip(),
                        "benchmark": str(rec[inp.benchmark_field]).strip(),
                        "accuracy": acc,
                        "source_file": uri,
                    }
                )
    return rows, problems


def split_roles(rows: list[dict], target_splits: list[str], eval_split: str) -> str:
    """One line: the examples per split, grouped by what they are for (targets, held out, unused)."""
    per = Counter(r["split"] for r in rows)

    def counts(names) -> str:
        return ", ".join(f"{s} {per[s]:,}" for s in names) or "none"

    line = (
        f"targets (refs.target_splits): {counts(s for s in target_splits if per[s])}; "
        f"held out (refs.eval_split): {counts([eval_split] if per[eval_split] else [])}"
    )
    unused = sorted(s for s in per if s not in target_splits and s != eval_split)
    return line + (f"; unused (neither): {counts(unused)}" if unused else "")


def held_out_check(target_splits: list[str], eval_split: str) -> Callable[[DataFrame], DataFrame]:
    """The gate's view of staged benchmarks: ``EVAL_OVERLAP`` names, on an example of a target split, the
    evaluation-split example with the same normalized text (the staged rows are their own reference, so
    the table is refused before any stage selects with it)."""

    def check(staged: DataFrame) -> DataFrame:
        return staged.transform(eval_overlap(staged, target_splits, eval_split))

    return check


def missing_scores(pool: list[str], group: list[str] | None) -> Callable[[DataFrame], DataFrame]:
    """The gate's view of staged scores: ``MISSING_SCORES`` says what the perplexity pool lacks.

    Args:
        pool: the perplexity pool's model ids.
        group: the benchmark group (None: every benchmark in the staged rows).
    """

    def check(staged: DataFrame) -> DataFrame:
        if not pool:
            return staged.withColumn(ref.MISSING_SCORES, F.lit(None).cast("string"))
        everyone = Window.partitionBy(F.lit(1))
        wanted = (
            F.array(*[F.lit(b) for b in sorted(group)])
            if group
            else F.array_sort(F.collect_set("benchmark").over(everyone))
        )
        gap = F.array_except(wanted, F.collect_set("benchmark").over(Window.partitionBy("model_id")))
        absent = F.array_sort(
            F.array_except(F.array(*[F.lit(m) for m in pool]), F.collect_set("model_id").over(everyone))
        )
        first = F.row_number().over(Window.orderBy("model_id", "benchmark")) == 1
        found = F.array_compact(
            F.array(
                F.when(
                    F.col("model_id").isin(pool) & (F.size(gap) > 0),
                    F.concat(F.col("model_id"), F.lit(" has no score for "), F.array_join(gap, ";")),
                ),
                F.when(
                    first & (F.size(absent) > 0),
                    F.concat(F.lit("no scores at all for pool model(s) "), F.array_join(absent, ", ")),
                ),
            )
        )
        return staged.withColumn(ref.MISSING_SCORES, F.when(F.size(found) > 0, F.array_join(found, "; ")))

    return check


def _without_item(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "eval_item"}


def _eval_item_rows(rows: list[dict]) -> list[dict]:
    """ref.eval_items rows: the benchmark rows whose answer could be read."""
    keep = ("benchmark", "split", "example_id", "source_file", "load_run_id", "loaded_at")
    return [
        {**{k: r[k] for k in keep}, **dataclasses.asdict(r["eval_item"])}
        for r in rows
        if r.get("eval_item") is not None
    ]


def _eval_items_output(ctx: JobContext, items: list[dict]) -> Output:
    """ref.eval_items, gated: an answer_index must point into the item's choices."""

    def check(staged: DataFrame) -> DataFrame:
        idx, choices = F.col("answer_index"), F.col("choices")
        bad = F.when(choices.isNotNull() & idx.isNull(), F.lit("no answer_index")).when(
            choices.isNotNull() & (idx >= F.size(choices)), F.concat_ws("/", "benchmark", "example_id")
        )
        return staged.withColumn(ref.BAD_ANSWER, bad)

    df = ctx.spark.createDataFrame(items, ref.EVAL_ITEMS.schema)
    params = {"expected_rows": len(items), "checked": True}
    return Output(ref.EVAL_ITEMS, df, "overwrite", params, check=check)


def load_refs(ctx: JobContext) -> str:
    """The stage body: read benchmark files and model scores → gate → replace the configured tables."""
    refs = ctx.conf.refs
    if not refs.benchmarks and not refs.model_scores:
        return "load_refs: no refs.benchmarks or refs.model_scores in the profile; nothing to load"
    outputs, lines, n_rows = [], [], 0
    if refs.benchmarks:
        rows, problems, notes = read_benchmarks(ctx.conf, ctx.conf.source_file)
        if problems:
            raise UsageError(
                f"{len(problems)} benchmark records could not be read: " + "; ".join(problems[:5])
            )
        for r in rows:
            r.update(load_run_id=ctx.run.run_id, loaded_at=ctx.run.started_at)
        items = _eval_item_rows(rows)
        df = ctx.spark.createDataFrame([_without_item(r) for r in rows], ref.BENCHMARKS.schema)
        targets, eval_split = list(refs.target_splits), refs.eval_split
        params = {"expected_rows": len(rows), "target_splits": targets, "eval_split": eval_split}
        check = held_out_check(targets, eval_split)
        outputs.append(Output(ref.BENCHMARKS, df, "overwrite", params, check=check))
        outputs.append(_eval_items_output(ctx, items))
        per = Counter(r["benchmark"] for r in rows)
        lines.append(
            f"{len(rows)} benchmark examples ({', '.join(f'{k} {v}' for k, v in sorted(per.items()))})"
            f" -> {ref.BENCHMARKS.name}"
        )
        lines.append(f"{len(items)} of them with a readable answer -> {ref.EVAL_ITEMS.name}")
        n_rows += len(rows)
        files = "\n".join(f"    {note}" for note in notes)
        files += f"\n  splits: {split_roles(rows, targets, eval_split)}"
    if refs.model_scores:
        rows, problems = read_model_scores(ctx.conf, ctx.conf.source_file)
        if problems:
            raise UsageError(
                f"{len(problems)} model score records could not be read: " + "; ".join(problems[:5])
            )
        if not rows:
            raise UsageError("refs.model_scores: the files hold no scores")
        for r in rows:
            r.update(load_run_id=ctx.run.run_id, loaded_at=ctx.run.started_at)
        pool = [m.model_id for m in ctx.conf.score.perplexity.pool]
        group = ctx.conf.aggregate.domains.benchmarks
        df = ctx.spark.createDataFrame(rows, ref.MODEL_SCORES.schema)
        params = {"expected_rows": len(rows), "pool_models": pool, "checked": True}
        outputs.append(Output(ref.MODEL_SCORES, df, "overwrite", params, check=missing_scores(pool, group)))
        lines.append(
            f"{len(rows)} model scores ({len({r['model_id'] for r in rows})} models x "
            f"{len({r['benchmark'] for r in rows})} benchmarks) -> {ref.MODEL_SCORES.name}"
        )
        n_rows += len(rows)
    commits = publish(ctx.lakehouse, ctx.run, outputs)
    ctx.run.rows_in = ctx.run.rows_out = n_rows
    versions = [f"v{commits[o.spec.name].version}" for o in outputs]
    summary = f"load_refs run {ctx.run.run_id}:\n" + "\n".join(
        f"  {line} {v}" for line, v in zip(lines, versions, strict=True)
    )
    return summary + (f"\n  benchmark files:\n{files}" if refs.benchmarks else "")


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``corpuslake-load-refs`` and ``spark-submit jobs/load_refs.py``."""
    args = job_parser(
        STAGE, "Load benchmark examples into ref.benchmarks and model accuracies into ref.model_scores."
    ).parse_args(argv)
    return run_job(STAGE, args, load_refs, watch=WATCH)


if __name__ == "__main__":
    raise SystemExit(main())
