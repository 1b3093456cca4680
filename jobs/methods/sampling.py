"""Seeded hashes of doc_id: the random baseline, held-out splits and the per-class training sample.

Every draw here is a hash of doc_id with a seed and a salt, not a random number generator: reruns pick the
same documents, and each use (salt) is independent of the others.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from jobs.ordered import ordered


class Unscorable(Exception):
    """The data cannot support a strategy (no rows, one class only); the stage skips it with this reason."""


_MANTISSA = (1 << 53) - 1


def unit_hash(seed: int, salt: str, col: str = "doc_id") -> Column:
    """A seeded hash of ``col`` as a double, uniform in [0, 1); ``salt`` keeps the uses independent."""
    h = F.xxhash64(F.col(col), F.lit(int(seed)), F.lit(salt))
    return h.bitwiseAND(F.lit(_MANTISSA)).cast("double") / float(1 << 53)


def class_sample(
    df: DataFrame,
    cap: int | None | dict,
    seed: int,
    label_col: str = "label",
    hold: list[DataFrame] | None = None,
) -> DataFrame:
    """At most ``cap`` rows per label, the ones with the smallest seeded hash of doc_id (stable on reruns).

    ``cap`` is one number for every label, or label → number (None: every row of that label).

    A class larger than its cap is first thinned by the hash to about twice the cap, so the exact cut
    ranks a small set instead of the whole class; the ranks come from ``jobs.ordered`` over the narrow
    ``[doc_id, label, hash]`` rows (not a window per label, which would put each class in one task), and
    the kept doc_ids are joined back.
    """
    if cap is None:
        return df
    counts = {r[label_col]: r["n"] for r in df.groupBy(label_col).agg(F.count("*").alias("n")).collect()}
    caps = {label: (cap.get(label) if isinstance(cap, dict) else cap) for label in counts}
    caps = {label: (n if caps[label] is None else min(n, caps[label])) for label, n in counts.items()}
    if all(caps[label] == n for label, n in counts.items()):
        return df
    h = unit_hash(seed, "class-sample")
    keep, limit = F.lit(False), F.lit(None)
    for label, n in counts.items():
        c = caps[label]
        frac = 1.0 if c >= n else min(1.0, 2.0 * c / n + 64.0 / n)
        keep = keep | ((F.col(label_col) == F.lit(label)) & (h < F.lit(frac)))
        limit = F.when(F.col(label_col) == F.lit(label), F.lit(c)).otherwise(limit)
    thin = df.filter(keep).select("doc_id", label_col, h.alias("_h"))
    ranked = ordered(thin, [label_col], [F.asc("_h"), F.asc("doc_id")], row_number="_n", hold=hold)
    chosen = ranked.filter(F.col("_n") <= limit).select("doc_id", label_col)
    return df.join(chosen, ["doc_id", label_col], "left_semi")


def random_scores(docs: DataFrame, seed: int) -> DataFrame:
    """The random baseline: ``[doc_id, score]``, a seeded hash of doc_id in [0, 1)."""
    return docs.select("doc_id", unit_hash(seed, "random").alias("score"))
