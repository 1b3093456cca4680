"""The pick: documents per strategy by score under a token budget, optionally capped per domain, and the
blend of strategies by percentile rank.

Documents are ordered by score (desc, ties by doc_id asc) and taken while the running token sum stays
within the budget: the pick stops at the first document that would overflow it (a prefix of the score
order, so rank and cum_tokens read as "the best n documents"; no greedy fill with later, smaller
documents). With a domain cap a document past its domain's cap is skipped and the pick goes on with the
other domains. ``blend`` turns each blended strategy's scores into percentile ranks (0 worst, 1 best) and
sums them with normalized weights (``jobs/sql/select_blend.sql``).

The running sums and ranks come from ``jobs.ordered`` (a range-partitioned sort, one pass per partition,
offsets per partition on the driver), exact and equal to the SQL windows ``PARTITION BY strategy`` would
give, so no strategy's pool goes through one task.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StringType, StructField, StructType

from jobs.ordered import ordered
from jobs.queries import run_sql
from jobs.runtime import UsageError

BLEND = "blend"
CANDIDATE_COLS = ("strategy", "doc_id", "score", "domain", "n_tokens")


def domain_cap(token_budget: int, max_domain_share: float | None) -> int | None:
    """Tokens one domain may hold: floor(share × budget), or None without a cap."""
    if max_domain_share is None:
        return None
    return math.floor(max_domain_share * token_budget)


# How far an explicitly set keep share may sit from select's budget share (relative) before a stage refuses
# the profile: rounding a share to two digits is fine, a different number is a second knob.
BUDGET_SHARE_TOLERANCE = 0.05


def budget_share(token_budget: int, pool_tokens: int, explicit: float | None, key: str) -> float:
    """The share of the pool's tokens select keeps: min(1, ``token_budget`` / ``pool_tokens``).

    A method that needs the kept share (BETR's threshold, perplexity correlations' keep_ratio) takes it from
    select's budget, so the two cannot disagree. A profile may still state it (``explicit``, the conf
    ``key``): it must agree within ``BUDGET_SHARE_TOLERANCE`` (relative), and the budget's share is used.

    Raises:
        UsageError: the pool has no tokens, or ``explicit`` disagrees with the budget's share.
    """
    if pool_tokens <= 0:
        raise UsageError("silver.documents has no tokens: no share of them can be kept")
    share = min(1.0, token_budget / pool_tokens)
    if explicit is not None and abs(explicit - share) > BUDGET_SHARE_TOLERANCE * share:
        raise UsageError(
            f"{key} {explicit:g} disagrees with select.token_budget {token_budget:,}, which keeps "
            f"{share:.4f} of silver.documents' {pool_tokens:,} tokens; leave {key} unset (it follows the "
            f"budget) or set select.token_budget to {round(explicit * pool_tokens):,}"
        )
    return share


def blend_weights(weights: dict[str, float], available: Iterable[str]) -> dict[str, float]:
    """``select.blend`` normalized to sum 1, in strategy-name order.

    Args:
        weights: strategy → weight ≥ 0.
        available: strategies with rows in gold.doc_scores.

    Raises:
        UsageError: no weights, a blended strategy without rows, a negative or non-finite weight, or all 0.
    """
    have = set(available)
    if not weights:
        raise UsageError("select.blend is empty; give strategy weights to blend")
    missing = sorted(k for k in weights if k not in have or k == BLEND)
    if missing:
        raise UsageError(
            f"select.blend: {', '.join(missing)} has no rows in gold.doc_scores "
            f"(strategies with rows: {', '.join(sorted(have - {BLEND})) or 'none'})"
        )
    bad = sorted(k for k, w in weights.items() if not math.isfinite(w) or w < 0)
    if bad:
        raise UsageError(f"select.blend: weights must be finite and ≥ 0; got {', '.join(bad)}")
    total = sum(weights.values())
    if total <= 0:
        raise UsageError("select.blend: weights sum to 0")
    return {k: weights[k] / total for k in sorted(weights)}


def blend_scores(
    scores: DataFrame, weights: dict[str, float], hold: list[DataFrame] | None = None
) -> DataFrame:
    """gold.doc_scores rows → ``[strategy='blend', doc_id, score, domain, n_tokens]``.

    Args:
        scores: ``[strategy, doc_id, score, domain, n_tokens]`` (other strategies' rows are ignored).
        weights: normalized weights from ``blend_weights``.
        hold: collects ``jobs.ordered``'s persisted intermediate (unpersist when done).

    Returns:
        One row per document any blended strategy scored; score = Σ_s w_s · percent_rank_s (a strategy
        that did not score the document contributes 0). percent_rank = (RANK − 1) / (n − 1) by score
        ascending, ties sharing a rank, as SQL's PERCENT_RANK; the ranks come from ``jobs.ordered``.
    """
    spark = scores.sparkSession
    schema = StructType(
        [StructField("strategy", StringType(), False), StructField("weight", DoubleType(), False)]
    )
    w = spark.createDataFrame(sorted(weights.items()), schema)
    rows = scores.filter(F.col("strategy").isin(list(weights))).select(*CANDIDATE_COLS)
    ranked = ordered(
        rows,
        ["strategy"],
        [F.asc("score"), F.asc("doc_id")],
        rank="score_rank",
        ties=["score"],
        count="n_scored",
        hold=hold,
    )
    return run_sql(spark, "select_blend", views={"blend_ranked": ranked, "blend_weights": w}).select(
        *CANDIDATE_COLS
    )


def pick(
    token_budget: int, max_domain_tokens: int | None = None, hold: list[DataFrame] | None = None
) -> Callable[[DataFrame], DataFrame]:
    """Candidates ``[strategy, doc_id, score, domain, n_tokens]`` → the pick per strategy.

    Order: score desc, ties by doc_id asc. With a cap, each (strategy, domain)'s running token sum in that
    order is taken first and a document whose domain's running sum passes the cap is dropped (and with it
    everything after it in that domain: tokens are ≥ 0, so the running sum only grows); the other domains
    go on. Over the documents left, rank is the position and cum_tokens the running sum, and the pick is
    the prefix with cum_tokens ≤ token_budget: it stops at the first document that would pass the budget.

    Both running sums come from ``jobs.ordered`` (range-partitioned, exact), not from a window per
    strategy, so a strategy's pool is sorted by every task, not by one.

    Args:
        token_budget: tokens per strategy; the pick stops at the first document that would pass it.
        max_domain_tokens: tokens per (strategy, domain); a document past its domain's cap is skipped and
            the pick goes on (None: no cap).
        hold: collects ``jobs.ordered``'s persisted intermediates (unpersist when done with the pick).

    Returns:
        A transform giving ``[strategy, doc_id, rank, score, domain, tokens, cum_tokens]``; rank 1..n by
        score desc, doc_id asc; cum_tokens the running sum, ≤ token_budget.
    """
    order = [F.desc("score"), F.asc("doc_id")]

    def run(candidates: DataFrame) -> DataFrame:
        c = candidates.select("strategy", "doc_id", "score", "domain", F.col("n_tokens").alias("tokens"))
        if max_domain_tokens is not None:
            c = ordered(c, ["strategy", "domain"], order, sums={"domain_cum": "tokens"}, hold=hold)
            c = c.filter(F.col("domain_cum") <= F.lit(max_domain_tokens)).drop("domain_cum")
        ranked = ordered(c, ["strategy"], order, row_number="rank", sums={"cum_tokens": "tokens"}, hold=hold)
        return ranked.filter(F.col("cum_tokens") <= F.lit(token_budget)).select(
            "strategy",
            "doc_id",
            F.col("rank").cast("int").alias("rank"),
            "score",
            "domain",
            "tokens",
            F.col("cum_tokens").cast("long").alias("cum_tokens"),
        )

    return run
