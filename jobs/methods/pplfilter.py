"""The perplexity filter (Ziya2's automatic scoring): documents by their perplexity under a reference LM,
in percentile bands, kept or dropped by band.

- Perplexity of a document = exp(nll_sum / n_tokens) under the reference model (scores.perplexity): the
  per-token perplexity, so long and short documents compare.
- Bands: cut points at percentiles of the scope's perplexities; band ``i`` holds the documents above cut
  ``i - 1`` and at most cut ``i`` (a tie with a cut stays in the lower band). Ziya2 keeps the
  lower-perplexity share (``keep_share``: one cut, ``head`` kept, ``tail`` dropped); CCNet's buckets cut
  at the 33rd and 66th percentiles (``head``, ``middle``, ``tail``).
- Scope: the whole pool, each domain, or each language (CCNet cuts per language).

The cut points come from ``percentile_approx`` grouped by scope: each task builds a sketch of its rows and
the sketches merge (partial aggregation), so no scope's documents meet in one task, and the driver gets one
row per scope. The cuts are exact while a scope holds at most ``accuracy`` documents; beyond that a cut's
rank is off by at most 1/``accuracy`` of the scope's documents (Spark's guarantee).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

GLOBAL = "*"  # the scope value of the whole pool


@dataclass(frozen=True)
class Bands:
    """Where the cuts go and which bands are kept.

    Attributes:
        quantiles: the cut points' percentiles, ascending (one fewer than ``names``).
        names: the bands, lowest perplexity first.
        keep: the bands kept.
    """

    quantiles: tuple[float, ...]
    names: tuple[str, ...]
    keep: tuple[str, ...]

    @classmethod
    def keep_share(cls, share: float) -> Bands:
        """Ziya2: keep the lower-perplexity ``share``."""
        return cls((share,), ("head", "tail"), ("head",))

    @classmethod
    def buckets(cls, keep: list[str] | tuple[str, ...]) -> Bands:
        """CCNet: head, middle and tail thirds; keep ``keep``."""
        return cls((1 / 3, 2 / 3), ("head", "middle", "tail"), tuple(keep))


def perplexity(nll_sum: Column, n_tokens: Column) -> Column:
    """Per-token perplexity from a scores.perplexity row."""
    return F.exp(nll_sum / n_tokens)


def scope_col(scope: str) -> Column:
    """The column a scope groups by: a constant for ``global``, else the ``domain`` or ``lang`` column (a
    document without a domain is its own ``(none)`` scope)."""
    if scope == "global":
        return F.lit(GLOBAL)
    return F.coalesce(F.col(scope), F.lit("(none)"))


def cut_points(bands: Bands, accuracy: int = 10_000) -> Callable[[DataFrame], DataFrame]:
    """The pool ``[doc_id, scope, perplexity]`` → one row per scope: ``scope, docs, cuts`` (ascending).

    Args:
        bands: where the cuts go.
        accuracy: ``percentile_approx``'s accuracy (see the module docstring).
    """
    qs = F.array(*[F.lit(q) for q in bands.quantiles])

    def transform(pool: DataFrame) -> DataFrame:
        return pool.groupBy("scope").agg(
            F.count("*").alias("docs"), F.percentile_approx("perplexity", qs, accuracy).alias("cuts")
        )

    return transform


def without_dropped(filtered: DataFrame) -> Callable[[DataFrame], DataFrame]:
    """Documents ``[doc_id, …]`` less those silver.filtered records as perplexity drops (where the filter
    takes effect: no strategy scores them)."""
    dropped = filtered.filter(F.col("step") == "perplexity").select("doc_id")

    def transform(docs: DataFrame) -> DataFrame:
        return docs.join(dropped, "doc_id", "left_anti")

    return transform


def banded(cuts: DataFrame, bands: Bands) -> Callable[[DataFrame], DataFrame]:
    """Documents ``[doc_id, scope, perplexity, …]`` → the same with ``band`` and ``kept``, ``low`` and
    ``high`` (the band's cut points; null at the open ends) and the scope's ``docs``.

    Args:
        cuts: ``cut_points``' rows (one per scope: small, joined by broadcast).
        bands: the bands' names and which are kept.
    """
    names = F.array(*[F.lit(n) for n in bands.names])

    def transform(docs: DataFrame) -> DataFrame:
        at = F.size(F.filter(F.col("cuts"), lambda c: c < F.col("perplexity")))
        out = (
            docs.join(F.broadcast(cuts), "scope")
            .withColumn("_i", at)
            .withColumn("band", F.element_at(names, F.col("_i") + 1))
            .withColumn("low", F.when(F.col("_i") > 0, F.element_at("cuts", F.col("_i"))))
            .withColumn("high", F.when(F.col("_i") < F.size("cuts"), F.element_at("cuts", F.col("_i") + 1)))
            .withColumn("kept", F.col("band").isin(*bands.keep))
        )
        return out.drop("_i", "cuts")

    return transform
