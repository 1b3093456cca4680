"""Expectation gates: stage → validate the staged data with the table's Great Expectations suite → commit.

A stage publishes its outputs with ``publish``: every output is staged first, every suite runs on the
staged files, and only if all pass are the tables committed. A failed suite commits nothing, removes the
staged files, records the validation in ``audit.expectations`` and raises ``GateFailed`` whose message is
a readable summary (expectation, column, unexpected count, a few examples).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame

from jobs.tables import CommitResult, Lakehouse, StagedWrite
from schemas.base import TableSpec

log = logging.getLogger(__name__)

_CONTEXT = None


class GateFailed(RuntimeError):
    """One or more suites failed; nothing was published."""

    def __init__(self, results: list[SuiteResult]):
        self.results = results
        super().__init__("\n".join(line for r in results if not r.success for line in r.summary_lines()))


@dataclass
class SuiteResult:
    """The outcome of one suite on one table's staged data."""

    table: str
    suite: str
    success: bool
    observed_rows: int | None
    expectations: list[dict] = field(default_factory=list)

    @property
    def evaluated(self) -> int:
        return len(self.expectations)

    @property
    def unsuccessful(self) -> int:
        return sum(1 for e in self.expectations if not e["success"])

    def summary_lines(self, examples: int = 3) -> list[str]:
        head = "passed" if self.success else "FAILED"
        lines = [
            f"gate {head}: {self.table} (suite {self.suite}): {self.unsuccessful} of {self.evaluated} "
            f"expectations failed on {self.observed_rows} staged rows"
        ]
        for e in self.expectations:
            if e["success"]:
                continue
            parts = [f"  x {e['expectation']}"]
            if e.get("column"):
                parts.append(f"column={e['column']}")
            if e.get("unexpected_count") is not None:
                parts.append(f"unexpected={e['unexpected_count']}")
            if e.get("observed_value") is not None:
                parts.append(f"observed={e['observed_value']}")
            if e.get("expected"):
                parts.append(f"expected={e['expected']}")
            if e.get("examples"):
                parts.append(f"examples={e['examples'][:examples]!r}")
            if e.get("error"):
                parts.append(f"error={e['error']}")
            lines.append("  ".join(parts))
        return lines


def _context():
    global _CONTEXT
    if _CONTEXT is None:
        # No network here or on many clusters: GE must not try to phone home.
        os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        # GE sets its own logger levels on import; its info lines are noise in a job's output.
        for name in list(logging.root.manager.loggerDict):
            if name.startswith("great_expectations"):
                logging.getLogger(name).setLevel(logging.WARNING)
        ctx = gx.get_context(mode="ephemeral")
        ctx.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
        # GE caches a batch's DataFrame (all its columns, deserialized) before its first metric. For rows
        # computed in memory (a check's joins) that saves recomputing them per metric. For staged Parquet it
        # only costs: each metric reads the few columns it needs straight from the files, where the cache
        # first copied every column, text included, into executor memory. Measured: ingest at x100 of the
        # sample (300 MB staged), the gate on bronze.documents 9 s cached against 4 s from the files; a clean
        # of 150 test documents, no difference beyond the machine's noise (25-30 s against 27-28 s).
        ctx.data_sources.add_spark(name=_IN_MEMORY)
        ctx.data_sources.add_spark(name=_FILES, persist=False)
        _CONTEXT = ctx
    return _CONTEXT


_IN_MEMORY, _FILES = "corpuslake", "corpuslake-files"


def _batch(df: DataFrame, table: str, files: bool):
    ds = _context().data_sources.get(_FILES if files else _IN_MEMORY)
    try:
        asset = ds.get_asset(table)
    except LookupError:
        asset = ds.add_dataframe_asset(name=table)
    try:
        bd = asset.get_batch_definition("whole")
    except (KeyError, LookupError):
        bd = asset.add_batch_definition_whole_dataframe("whole")
    return bd.get_batch(batch_parameters={"dataframe": df})


def _jsonable(v: Any) -> Any:
    try:
        json.dumps(v)
        return v
    except TypeError:
        return str(v)


_KWARG_KEYS = ("value", "value_set", "min_value", "max_value", "regex")


def validate(
    df: DataFrame,
    spec: TableSpec,
    params: Mapping[str, Any] | None = None,
    rows: int | None = None,
    files: bool = False,
) -> SuiteResult:
    """Run the table's suite on ``df`` (Spark datasource, no GE project folder).

    A passing suite is the common case, and its counts and examples are what cost: Great Expectations'
    SUMMARY format runs about three Spark jobs per expectation (counts, then the unexpected examples), its
    BOOLEAN_ONLY format about one (measured: 30 jobs against 9 for bronze.documents' 12 expectations). So
    the suite runs BOOLEAN_ONLY first; only a failing suite is validated again in SUMMARY for the counts and
    examples its message and audit row give. A passing suite's expectations record their verdicts only.

    Args:
        df: the staged data.
        spec: the table whose suite applies.
        params: run parameters the suite uses (run id, expected counts, limits).
        rows: ``df``'s row count when the caller knows it (staged files' footers); counted otherwise.
        files: ``df`` is a plain read of files (staged Parquet): each metric reads its columns from them,
            nothing is cached. Otherwise the rows are cached for the suite's metrics.
    """
    # Great Expectations persists the frame it validates (``_context``: not the staged files) and never
    # unpersists it: every gate of a `corpuslake run` left its rows cached until the run ended (12 frames
    # after eight stages of a 16x bench run, scores.embeddings' vectors included). The frame is
    # unpersisted here once the suite is done, unless the caller had cached it before.
    owned = not files and not df.storageLevel.useMemory and not df.storageLevel.useDisk
    try:
        return _validate(df, spec, params, rows, files)
    finally:
        if owned:
            df.unpersist()


def _validate(
    df: DataFrame, spec: TableSpec, params: Mapping[str, Any] | None, rows: int | None, files: bool
) -> SuiteResult:
    import great_expectations as gx

    suite = gx.ExpectationSuite(name=spec.suite_name, expectations=spec.expectations(params))
    batch = _batch(df, spec.name, files)
    verdicts = batch.validate(suite, result_format={"result_format": "BOOLEAN_ONLY"})
    if verdicts.success:
        out = [_entry(r) for r in verdicts.results]
        return SuiteResult(spec.name, spec.suite_name, True, rows if rows is not None else df.count(), out)
    res = batch.validate(suite, result_format={"result_format": "SUMMARY", "partial_unexpected_count": 5})
    observed = rows
    for r in res.results:
        result = r.result or {}
        observed = result.get("element_count", observed)
        if r.expectation_config.type == "expect_table_row_count_to_equal":
            observed = result.get("observed_value", observed)
    return SuiteResult(
        spec.name, spec.suite_name, bool(res.success), observed, [_entry(r) for r in res.results]
    )


def _entry(r) -> dict[str, Any]:
    """One expectation's outcome as audit and gate messages read it (counts are None in BOOLEAN_ONLY)."""
    cfg = r.expectation_config
    result = r.result or {}
    err = (r.exception_info or {}).get("exception_message") if r.exception_info else None
    return {
        "expectation": cfg.type,
        "column": cfg.kwargs.get("column"),
        "success": bool(r.success),
        "unexpected_count": result.get("unexpected_count"),
        "observed_value": _jsonable(result.get("observed_value")),
        "expected": {k: _jsonable(cfg.kwargs[k]) for k in _KWARG_KEYS if cfg.kwargs.get(k) is not None},
        "examples": [_jsonable(x) for x in result.get("partial_unexpected_list") or []],
        "error": err,
    }


@dataclass
class Output:
    """One table a stage publishes."""

    spec: TableSpec
    df: DataFrame
    mode: str = "append"
    params: Mapping[str, Any] = field(default_factory=dict)
    # Adds columns the suite checks against other tables (e.g. doc_ids missing from silver), so
    # cross-table rules run on the staged rows like any other expectation.
    check: Callable[[DataFrame], DataFrame] | None = None
    # Key columns no commit may duplicate (scores): delta-spark commits them with an insert-only MERGE.
    merge_on: list[str] | None = None
    # The table version the stage checked these rows against (ingest's doc_ids against bronze): the commit
    # lands only on top of it, else ``TableMoved`` (see ``Lakehouse.commit``).
    read_version: int | None = None
    # Extra commit info, written in the same log entry as the rows (ingest's file ledger).
    commit_info: Mapping[str, str] = field(default_factory=dict)

    def validation_frame(self, staged: DataFrame) -> DataFrame:
        return self.check(staged) if self.check is not None else staged


def app_id(stage: str, run_id: str) -> str:
    """The Delta transaction app id of one run's commits."""
    return f"corpuslake.{stage}.{run_id}"


def publish(
    lakehouse: Lakehouse, run, outputs: list[Output], idempotent: bool = True
) -> dict[str, CommitResult]:
    """Stage every output, validate each staged table, and commit all of them only if every suite passes.

    Args:
        lakehouse: where the tables live.
        run: the ``jobs.audit.Run`` publishing (run id, stage, run sequence number).
        outputs: the tables to publish, committed in this order.
        idempotent: commit with the run's Delta transaction (app id ``corpuslake.<stage>.<run id>``, version
            the run sequence), so a retried run with the same run id adds nothing. The app id is the run's
            own: concurrent runs of a stage never see each other's transactions, whatever order they
            commit in. A stage that commits several times per run (chunked scoring) passes False and gets
            its idempotence from what it schedules (only keys missing from the table) and its gate; so
            do ingest and clean, whose ledgers (commit info) say what already landed.

    Returns:
        Table name → commit result.

    Raises:
        GateFailed: a suite failed; staged files are removed, nothing is committed, audit rows are written.
        TableMoved: an output's ``read_version`` is no longer its table's version; nothing more is
            committed (outputs before it in ``outputs`` may have been).
    """
    from jobs import audit

    staged: list[tuple[Output, StagedWrite]] = []
    try:
        for out in outputs:
            staged.append((out, lakehouse.stage(out.df, out.spec, out.mode, run.run_id)))
        # A check only adds columns to the staged rows: their count is still the footers' one. Without a
        # check the suite reads the staged files themselves (see ``_context``).
        results = [
            validate(o.validation_frame(s.dataframe()), o.spec, o.params, s.rows, files=o.check is None)
            for o, s in staged
        ]
    except BaseException:
        for _, s in staged:
            lakehouse.abort(s)
        raise
    if not all(r.success for r in results):
        for _, s in staged:
            lakehouse.abort(s)
        audit.record_expectations(lakehouse, run, results, {})
        raise GateFailed(results)
    commits: dict[str, CommitResult] = {}
    try:
        for out, s in staged:
            commits[out.spec.name] = lakehouse.commit(
                s,
                app_id=app_id(run.stage, run.run_id) if idempotent else None,
                txn_version=run.seq if idempotent else None,
                merge_on=out.merge_on,
                read_version=out.read_version,
                stage=run.stage,
                **out.commit_info,
            )
    except BaseException:
        for _, s in staged:
            lakehouse.abort(s)
        raise
    audit.record_expectations(lakehouse, run, results, {k: c.version for k, c in commits.items()})
    run.tables_written.update({k: c.version for k, c in commits.items()})
    for r in results:
        log.info("\n".join(r.summary_lines()))
    return commits


def check(
    lakehouse: Lakehouse, run, df: DataFrame, spec: TableSpec, params: Mapping[str, Any] | None = None
) -> SuiteResult:
    """Validate rows a stage uses but does not publish (its benchmark targets) with ``spec``'s suite.

    The result goes to audit.expectations like a published table's (no table version), so a refused run
    shows among the gates; on failure nothing of the run has been published yet.

    Raises:
        GateFailed: the suite failed.
    """
    from jobs import audit

    result = validate(df, spec, params)
    audit.record_expectations(lakehouse, run, [result], {})
    if not result.success:
        raise GateFailed([result])
    log.info("\n".join(result.summary_lines()))
    return result
