"""The benchmark targets a stage selects with: read from ref.benchmarks, held-out split excluded, gated.

score_similarity (BETR targets, RDS+ queries) and aggregate_weights (the builtin Meta-rater proxy's
validation texts) take their targets here, so every method draws them from ``refs.target_splits`` only
and the same gate (``schemas.ref.TARGETS``) stands before each: no target from ``refs.eval_split``, and
none whose normalized text the evaluation split also has (``jobs.methods.heldout``).
"""

from __future__ import annotations

from collections.abc import Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from jobs import gates
from jobs.methods.heldout import eval_overlap, target_examples
from jobs.runtime import JobContext, UsageError
from schemas import ref


def read_targets(ctx: JobContext, benchmarks: Sequence[str] | None = None) -> DataFrame:
    """The target examples, ``[benchmark, split, example_id, text]``, after their gate passed.

    Args:
        ctx: the running stage (its conf's ``refs.target_splits`` / ``refs.eval_split``).
        benchmarks: keep only these benchmarks (None: all).

    Raises:
        UsageError: no example of ref.benchmarks is in the target splits (the message lists its splits).
        GateFailed: a target is from the evaluation split or shares its normalized text with it.
    """
    refs, lh = ctx.conf.refs, ctx.lakehouse
    ctx.run.tables_read[ref.BENCHMARKS.name] = lh.version(ref.BENCHMARKS) or 0
    bench = lh.read(ref.BENCHMARKS)
    targets = target_examples(bench, refs.target_splits)
    if benchmarks is not None:
        targets = targets.filter(F.col("benchmark").isin(list(benchmarks)))
    if targets.isEmpty():
        have = bench.groupBy("split").count().orderBy("split").collect()  # one row per split
        held = ", ".join(f"{r['split']} {r['count']:,}" for r in have) or "no examples"
        narrowed = f" of score.similarity.benchmarks {list(benchmarks)}" if benchmarks is not None else ""
        raise UsageError(
            f"no benchmark example{narrowed} is in refs.target_splits {refs.target_splits} (ref.benchmarks "
            f"has {held}); name the splits that select data in refs.target_splits "
            f"(refs.eval_split {refs.eval_split!r} stays held out)"
        )
    params = {"target_splits": list(refs.target_splits), "eval_split": refs.eval_split}
    checked = targets.transform(eval_overlap(bench, refs.target_splits, refs.eval_split))
    gates.check(lh, ctx.run, checked, ref.TARGETS, params)
    return targets
