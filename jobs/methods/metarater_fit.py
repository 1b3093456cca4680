"""Meta-rater's fit: a LightGBM regressor weights → proxy loss, then w* from Dirichlet candidates.

As the Meta-rater code does it (``pipeline/step3_train_regressor.py``, ``step4_search_optimal.py``):
the proposals are split in draw order, the first ``1 − valid_share`` train the regressor and the rest are
its validation set (early stopping on l1 and l2, and the held-out Spearman); ``candidates`` Dirichlet(1)
vectors are scored and w* is the mean of the ``best`` lowest predicted. The validation set is proxy
results (weight vector, proxy loss), never benchmark examples.

Candidates are drawn and scored in chunks of ``CANDIDATE_CHUNK`` from one generator (the same draws as one
big array), keeping only the best so far: the driver holds one chunk and ``best`` rows, not 10^6 × S.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

CANDIDATE_CHUNK = 65_536


@dataclass(frozen=True)
class Regressor:
    """LightGBM settings (``aggregate.weights.lightgbm``); the defaults are Meta-rater's.

    Args:
        boosting: ``gbdt`` (Meta-rater) or ``dart`` (LightGBM cannot stop dart early: every round runs).
        learning_rate: 0.01 in Meta-rater.
        num_boost_round: at most this many rounds (Meta-rater: 1000).
        early_stopping_rounds: stop when l1 or l2 on the validation proposals has not improved for this
            many rounds (Meta-rater: 5); None trains every round.
        valid_share: the last share of the proposals held out (Meta-rater: train_ratio 0.8).
        seed: LightGBM's seed (Meta-rater: 42).
        num_leaves, min_child_samples, min_data_in_bin: tree size; LightGBM's defaults (31, 20, 3), which
            Meta-rater keeps. With tens of proposals no leaf can hold 20: the demo lowers them.
    """

    boosting: str = "gbdt"
    learning_rate: float = 0.01
    num_boost_round: int = 1000
    early_stopping_rounds: int | None = 5
    valid_share: float = 0.2
    seed: int = 42
    num_leaves: int = 31
    min_child_samples: int = 20
    min_data_in_bin: int = 3

    def params(self) -> dict:
        """LightGBM's parameters. One thread and ``deterministic``: a refit gives the same w*."""
        return {
            "objective": "regression",
            "boosting": self.boosting,
            "learning_rate": self.learning_rate,
            # Meta-rater's metric list: early stopping watches both and stops on the first to stall.
            "metric": ["l1", "l2"],
            "seed": self.seed,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "min_data_in_bin": self.min_data_in_bin,
            "deterministic": True,
            "force_col_wise": True,
            "num_threads": 1,
            "verbosity": -1,
        }

    def n_train(self, k: int) -> int:
        """Proposals the regressor trains on: ⌊k · (1 − valid_share)⌋ as Meta-rater's split, kept within
        1 … k − 1 so both sides have a row."""
        return min(max(int(round(k * (1.0 - self.valid_share), 9)), 1), k - 1)


@dataclass
class FitResult:
    """w* and what the regressor says about it."""

    weights: np.ndarray
    heldout_spearman: float | None
    predicted_loss: float
    n_proposals: int
    n_candidates: int
    n_best: int
    n_train: int
    n_valid: int
    rounds: int  # boosting rounds the predictions use (the best iteration when early stopping fired)
    note: str | None = None


def best_candidates(
    predict: Callable[[np.ndarray], np.ndarray], n_signals: int, candidates: int, best: int, seed: int
) -> tuple[np.ndarray, float, float]:
    """The ``best`` lowest-predicted of ``candidates`` Dirichlet(1) draws (``default_rng([seed, 1])``),
    ties to the earlier draw, scored chunk by chunk.

    Returns:
        ``(chosen [best, S] in rank order, lowest prediction, highest prediction)``.
    """
    rng = np.random.default_rng([seed, 1])
    keep_w = np.empty((0, n_signals))
    keep_p = np.empty(0)
    keep_i = np.empty(0, dtype=np.int64)
    lo, hi = math.inf, -math.inf
    for start in range(0, candidates, CANDIDATE_CHUNK):
        n = min(CANDIDATE_CHUNK, candidates - start)
        cand = rng.dirichlet(np.ones(n_signals), size=n)
        pred = np.asarray(predict(cand), dtype=float)
        lo, hi = min(lo, float(pred.min())), max(hi, float(pred.max()))
        w = np.concatenate([keep_w, cand])
        p = np.concatenate([keep_p, pred])
        i = np.concatenate([keep_i, np.arange(start, start + n)])
        top = np.lexsort((i, p))[:best]
        keep_w, keep_p, keep_i = w[top], p[top], i[top]
    return keep_w, lo, hi


def fit_weights(
    x: np.ndarray, y: np.ndarray, candidates: int, best: int, seed: int, regressor: Regressor | None = None
) -> FitResult:
    """LightGBM weights → loss; w* = renormalized mean of the ``best`` lowest-predicted Dirichlet candidates.

    Args:
        x: ``[K, S]`` proposal weights, in proposal order (the validation rows are the last ones).
        y: ``[K]`` proxy validation losses (lower is better).
        candidates: Dirichlet(1) draws scored (``default_rng([seed, 1])``).
        best: how many are averaged; ties in predicted loss go to the earlier draw.
        seed: seeds the candidates (the regressor has its own, ``regressor.seed``).
        regressor: LightGBM settings (default: Meta-rater's).
    """
    import lightgbm as lgb
    from scipy.stats import spearmanr

    reg = regressor or Regressor()
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    k, s = x.shape
    n_train = reg.n_train(k)
    params = reg.params()
    train = lgb.Dataset(x[:n_train], y[:n_train])
    valid = lgb.Dataset(x[n_train:], y[n_train:], reference=train)
    callbacks = []
    if reg.early_stopping_rounds is not None and reg.boosting != "dart":  # LightGBM has none for dart
        callbacks.append(lgb.early_stopping(reg.early_stopping_rounds, verbose=False))
    model = lgb.train(
        params, train, num_boost_round=reg.num_boost_round, valid_sets=[valid], callbacks=callbacks
    )
    rounds = model.best_iteration if model.best_iteration > 0 else model.current_iteration()

    def predict(a: np.ndarray) -> np.ndarray:
        return model.predict(a, num_iteration=rounds)

    held = predict(x[n_train:])
    y_valid = y[n_train:]
    rho = float(spearmanr(held, y_valid).statistic) if np.ptp(held) > 0 and np.ptp(y_valid) > 0 else math.nan
    rho = float(np.clip(rho, -1.0, 1.0))  # rounding must not push it past the gate's [-1, 1]
    chosen, lo, hi = best_candidates(predict, s, candidates, best, seed)
    w = chosen.mean(axis=0)
    w = w / w.sum()
    note = None
    if hi == lo:
        note = (
            "the regressor made no split (too few or too similar proxy results for its leaf settings): every "
            f"candidate predicts the same loss and w* is the mean of the first {best} candidates"
        )
    return FitResult(
        weights=w,
        heldout_spearman=None if math.isnan(rho) else rho,
        predicted_loss=float(predict(w[None, :])[0]),
        n_proposals=k,
        n_candidates=candidates,
        n_best=best,
        n_train=n_train,
        n_valid=k - n_train,
        rounds=int(rounds),
        note=note,
    )
