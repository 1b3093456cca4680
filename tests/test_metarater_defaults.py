"""Meta-rater's paper defaults: the label normalization against numpy, and the fit
(``jobs.methods.metarater_fit``) against the Meta-rater code's regressor and search."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from jobs.methods.metarater import normalize
from jobs.methods.metarater_fit import Regressor, fit_weights

W_TRUE = np.array([0.45, 0.3, 0.15, 0.1])


def test_label_normalization_is_argmax_over_k_minus_1(spark):
    """Class outputs are normalized as Meta-rater does, argmax / (k − 1) · 5: the PRRC labels (k = 6) and a
    class column of another score table (k = 11, named in ``classes``), against numpy's argmax of the
    class probabilities; the expected class (the option) stays min–max."""
    rng = np.random.default_rng(8)
    n = 40
    p6, p11 = rng.dirichlet(np.ones(6), size=n), rng.dirichlet(np.ones(11), size=n)
    pdf = pd.DataFrame(
        {
            "doc_id": [f"d{i:02d}" for i in range(n)],
            "readability_label": p6.argmax(axis=1).astype(np.int32),
            "readability": p6 @ np.arange(6),
            "scores.edu.int_score": p11.argmax(axis=1).astype(np.int32),
        }
    )
    signals = list(pdf.columns[1:])
    got = normalize(spark.createDataFrame(pdf), signals, {"scores.edu.int_score": 11}).toPandas()
    got = got.sort_values("doc_id").reset_index(drop=True)
    np.testing.assert_allclose(got["readability_label"], np.argmax(p6, axis=1) / (6 - 1) * 5, rtol=1e-15)
    np.testing.assert_allclose(got["scores.edu.int_score"], np.argmax(p11, axis=1) / (11 - 1) * 5, rtol=1e-15)
    e = p6 @ np.arange(6)
    np.testing.assert_allclose(got["readability"], (e - e.min()) / (e.max() - e.min()) * 5, rtol=1e-14)


def _known_proxy_results(k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    x = rng.dirichlet(np.ones(4), size=k)
    return x, ((x - W_TRUE) ** 2).sum(axis=1) + rng.normal(0, 0.002, k)


@pytest.mark.filterwarnings("ignore:The argument 'eval_set' is deprecated")
def test_fit_with_the_papers_settings_equals_the_meta_rater_code():
    """256 proposals under the default Regressor (gbdt, lr 0.01, 1000 rounds, early stopping 5, seed 42)
    give the w* that the Meta-rater code's steps 3 and 4, written out here, give: LGBMRegressor on the
    first 80% with the last 20% as the early-stopping set, then the mean of the best candidates."""
    import lightgbm as lgb
    from scipy.stats import spearmanr

    x, y = _known_proxy_results(256)
    res = fit_weights(x, y, candidates=5000, best=128, seed=0, regressor=Regressor())
    assert (res.n_proposals, res.n_train, res.n_valid, res.n_candidates) == (256, 204, 52, 5000)

    params = {
        "boosting_type": "gbdt",
        "objective": "regression",
        "metric": ["l1", "l2"],
        "num_iterations": 1000,
        "seed": 42,
        "learning_rate": 1e-2,
        "verbosity": -1,
    }
    ref = lgb.LGBMRegressor(**params).fit(
        x[:204],
        y[:204],
        eval_set=[(x[204:], y[204:])],
        eval_metric="l2",
        callbacks=[lgb.early_stopping(stopping_rounds=5, verbose=False)],
    )
    assert res.rounds == ref.best_iteration_ < 1000  # early stopping fired
    rho = spearmanr(ref.predict(x[204:]), y[204:]).statistic
    assert res.heldout_spearman == pytest.approx(rho, abs=1e-12)
    cand = np.random.default_rng([0, 1]).dirichlet(np.ones(4), size=5000)
    pred = ref.predict(cand)
    w = cand[np.lexsort((np.arange(5000), pred))[:128]].mean(axis=0)
    np.testing.assert_allclose(res.weights, w / w.sum(), rtol=0, atol=1e-12)
    assert np.abs(res.weights - W_TRUE).sum() < 0.1


def test_candidates_scored_in_chunks_equal_one_array(monkeypatch):
    """The chunked candidate search picks what one big array of draws would (ties to the earlier draw)."""
    from jobs.methods import metarater_fit

    x, y = _known_proxy_results(64)
    reg = Regressor(num_leaves=4, min_child_samples=2, min_data_in_bin=1)
    whole = fit_weights(x, y, candidates=3000, best=100, seed=4, regressor=reg)
    monkeypatch.setattr(metarater_fit, "CANDIDATE_CHUNK", 70)  # smaller than best: the kept rows carry over
    chunked = fit_weights(x, y, candidates=3000, best=100, seed=4, regressor=reg)
    assert np.array_equal(whole.weights, chunked.weights)
    assert whole.predicted_loss == chunked.predicted_loss


def test_fit_without_a_split_says_so():
    x = np.random.default_rng(0).dirichlet(np.ones(3), size=4)
    res = fit_weights(x, np.ones(4), candidates=200, best=10, seed=0)
    assert res.note and "no split" in res.note and res.heldout_spearman is None
    assert (res.n_train, res.n_valid) == (3, 1)
    assert abs(res.weights.sum() - 1) < 1e-12
