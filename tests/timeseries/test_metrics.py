"""Metrics against properscoring and hand computations; baselines."""

import numpy as np
import pytest

from difflab.timeseries.metrics import (
    coverage,
    crps_ensemble,
    crps_quantile,
    crps_sum,
    metric_table,
    sample_quantiles,
    weighted_quantile_losses,
)
from difflab.timeseries.models.baselines import ets_forecast, seasonal_naive


def test_crps_ensemble_matches_properscoring():
    ps = pytest.importorskip("properscoring")
    rng = np.random.default_rng(0)
    samples = rng.normal(size=(37, 5, 3))
    y = rng.normal(size=(5, 3))
    ours = crps_ensemble(samples, y)
    ref = ps.crps_ensemble(y, np.moveaxis(samples, 0, -1))
    assert np.allclose(ours, ref, atol=1e-12)


def test_weighted_quantile_loss_by_hand():
    samples = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0], [4.0, 40.0], [5.0, 50.0]])  # S=5, 2 points
    y = np.array([2.5, 45.0])
    # nearest rank: q=0.5 -> idx round(4*0.5)=2 -> (3, 30); q=0.1 -> idx round(0.4)=0 -> (1, 10)
    assert sample_quantiles(samples, [0.5, 0.1]).tolist() == [[3.0, 30.0], [1.0, 10.0]]
    ql05 = 2 * (abs((2.5 - 3.0) * (1 - 0.5)) + abs((45.0 - 30.0) * (0 - 0.5)))
    ql01 = 2 * (abs((2.5 - 1.0) * (0 - 0.1)) + abs((45.0 - 10.0) * (0 - 0.1)))
    w = weighted_quantile_losses(samples, y, levels=[0.5, 0.1])
    assert np.allclose(w, [ql05 / 47.5, ql01 / 47.5])
    assert crps_quantile(samples, y, levels=[0.5, 0.1]) == pytest.approx((ql05 + ql01) / 2 / 47.5)


def test_quantile_crps_approximates_exact_crps():
    rng = np.random.default_rng(1)
    samples = 10 + rng.normal(size=(2000, 50))
    y = 10 + rng.normal(size=50)
    exact = crps_ensemble(samples, y).sum() / np.abs(y).sum()
    assert crps_quantile(samples, y, estimator="linear") == pytest.approx(exact, rel=0.1)


def test_mask_excludes_missing_and_crps_sum():
    rng = np.random.default_rng(2)
    s = rng.normal(5, 1, size=(20, 4, 3))
    y = rng.normal(5, 1, size=(4, 3))
    m = np.ones_like(y)
    m[0, 0] = 0
    y2 = y.copy()
    y2[0, 0] = 1e6  # a missing target must not count
    assert crps_quantile(s, y2, m) == pytest.approx(crps_quantile(s, np.where(m > 0, y, 0), m))
    full = np.ones_like(y)
    assert crps_sum(s, y, full) == pytest.approx(crps_quantile(s.sum(-1), y.sum(-1)))


def test_coverage_and_table():
    rng = np.random.default_rng(3)
    s = rng.normal(size=(400, 3000))
    y = rng.normal(size=3000)
    assert coverage(s, y, level=0.9) == pytest.approx(0.9, abs=0.03)
    assert coverage(s, y, level=0.5) == pytest.approx(0.5, abs=0.03)
    t = metric_table(s[:, :, None] + 5, y[:, None] + 5)
    assert set(t) == {"crps", "crps_sum", "crps_ens", "mse", "mae", "cov50", "cov90"}


def test_seasonal_naive_and_missing():
    ctx = np.arange(12.0)[:, None]
    f = seasonal_naive(ctx, 6, 4, 2)
    assert f.shape == (2, 6, 1) and f[0, :, 0].tolist() == [8, 9, 10, 11, 8, 9]
    ctx[9] = np.nan
    assert seasonal_naive(ctx, 2, 4)[0, :, 0].tolist() == [8, 5]


def test_ets_baseline_is_probabilistic():
    pytest.importorskip("statsmodels")
    t = np.arange(96)
    ctx = (10 + np.sin(2 * np.pi * t / 24) + 0.1 * np.random.default_rng(0).normal(size=96))[:, None]
    f = ets_forecast(ctx, 24, 24, 50)
    assert f.shape == (50, 24, 1) and f.std(0).mean() > 0
    truth = 10 + np.sin(2 * np.pi * np.arange(96, 120) / 24)
    assert np.abs(np.median(f[:, :, 0], 0) - truth).mean() < 0.5
