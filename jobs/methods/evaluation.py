"""The selection-effect experiment's statistics: per-seed values → paired differences to random, seed
spread and confidence intervals, and the table ``corpuslake evaluate`` and ``make demo`` print.

Pure pandas on the driver: one row per (strategy, seed, benchmark, metric), so the data is bounded by
strategies × seeds × benchmarks, never by documents.

Paired: the random arm is re-drawn per seed, and every strategy's model at seed s shares its
initialisation and data-order seed with random's model at seed s, so ``value − random's value`` at the
same seed removes what the seed does to both. ``diff_mean ± t · diff_std / √k`` is the t interval over the
k seeds (k − 1 degrees of freedom).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

RANDOM = "random"
KEYS = ["benchmark", "metric"]
# Lower is better for bits per byte, higher for accuracy: the sign a "better than random" difference has.
BETTER = {"answer_bpb": -1.0, "bpb": -1.0, "mc_accuracy": 1.0}


def summarize(runs: pd.DataFrame, confidence: float) -> pd.DataFrame:
    """``runs`` plus the paired difference to random and the summary over seeds.

    Args:
        runs: ``[strategy, seed, benchmark, metric, value, …]``, one row per model and metric; the random
            arm must have a row for every (seed, benchmark, metric) the others have.
        confidence: level of the t intervals (0.95).

    Returns:
        ``runs`` with ``diff_to_random`` (null for random), ``mean``, ``std`` (sample, over seeds),
        ``diff_mean``, ``diff_std``, ``diff_ci_low``, ``diff_ci_high`` and ``n_seeds``.
    """
    from scipy import stats

    out = runs.copy()
    base = out[out["strategy"] == RANDOM][["seed", *KEYS, "value"]].rename(columns={"value": "_random"})
    out = out.merge(base, on=["seed", *KEYS], how="left")
    out["diff_to_random"] = np.where(out["strategy"] == RANDOM, np.nan, out["value"] - out["_random"])
    group = out.groupby(["strategy", *KEYS])
    out["mean"] = group["value"].transform("mean")
    out["std"] = group["value"].transform(lambda v: v.std(ddof=1) if len(v) > 1 else 0.0)
    out["n_seeds"] = group["value"].transform("count").astype(int)
    out["diff_mean"] = group["diff_to_random"].transform("mean")
    out["diff_std"] = group["diff_to_random"].transform(
        lambda v: v.std(ddof=1) if v.notna().sum() > 1 else 0.0
    )
    t = out["n_seeds"].map(lambda k: stats.t.ppf(0.5 + confidence / 2, k - 1) if k > 1 else math.inf)
    half = t * out["diff_std"] / np.sqrt(out["n_seeds"])
    out["diff_ci_low"] = out["diff_mean"] - half
    out["diff_ci_high"] = out["diff_mean"] + half
    nulls = out["strategy"] == RANDOM
    for c in ("diff_mean", "diff_std", "diff_ci_low", "diff_ci_high"):
        out.loc[nulls, c] = np.nan
    return out.drop(columns="_random")


def beats_random(row: pd.Series, random_std: float) -> bool:
    """Whether the mean paired difference is better than random by more than twice the seed spread (the
    larger of the strategy's and random's standard deviation over seeds)."""
    spread = max(float(row["std"]), float(random_std))
    return BETTER[row["metric"]] * float(row["diff_mean"]) > 2 * spread


def table(summary: pd.DataFrame, metric: str = "answer_bpb") -> list[str]:
    """A strategies × benchmarks table of one metric: random as mean ± std, every other strategy as its
    mean paired difference relative to random's mean (``−3.1% ± 0.4``: ± the standard deviation of the
    paired differences, in the same unit; accuracy as a difference in points, ``+2.0 pt ± 1.1``), ``*``
    where it beats random by more than twice the seed spread (``beats_random``)."""
    rows = summary[summary["metric"] == metric].drop_duplicates(["strategy", "benchmark"])
    if rows.empty:
        return []
    benches = sorted(rows["benchmark"].unique())
    strategies = [RANDOM, *sorted(s for s in rows["strategy"].unique() if s != RANDOM)]
    rand = rows[rows["strategy"] == RANDOM].set_index("benchmark")
    width = max(16, *(len(b) + 2 for b in benches))
    lines = [f"{'strategy':<12}" + "".join(f"{b:>{width}}" for b in benches)]
    for s in strategies:
        cells = []
        for b in benches:
            r = rows[(rows["strategy"] == s) & (rows["benchmark"] == b)]
            if r.empty or b not in rand.index:
                cells.append(f"{'-':>{width}}")
                continue
            r = r.iloc[0]
            if s == RANDOM:
                cells.append(f"{r['mean']:.4f} ± {r['std']:.4f}".rjust(width))
                continue
            mark = "*" if beats_random(r, float(rand.loc[b, "std"])) else " "
            if metric == "mc_accuracy":  # a share already: the difference in points
                cells.append(f"{100 * r['diff_mean']:+.1f} pt ± {100 * r['diff_std']:.1f}{mark}".rjust(width))
                continue
            base = float(rand.loc[b, "mean"])
            rel = 100 * float(r["diff_mean"]) / base if base else math.nan
            spread = 100 * float(r["diff_std"]) / base if base else math.nan
            cells.append(f"{rel:+.1f}% ± {spread:.1f}{mark}".rjust(width))
        lines.append(f"{s:<12}" + "".join(cells))
    return lines
