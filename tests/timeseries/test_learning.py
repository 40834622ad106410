"""Learning tests: brief CPU training on the real taylor demand (half-hourly electricity demand)
beats the classical baselines on the held-out period.

Forecasting (FALDA-style decomposed diffusion with GP noise, 400 steps, 32 samples, 14 test windows of
context 96 / horizon 48): CRPS below seasonal naive's, and a 90 % interval that covers close to 90 %.

Imputation (CSDI, 600 steps with a weight EMA of 0.99, 16 samples): two masks over the same test
windows.
- ``random``: half of the values hidden one by one. Every hidden value has given neighbours, and on
  this smooth curve linear interpolation between them is the strong baseline: CSDI beats the window
  mean by far but not interpolation at this budget (both reported).
- ``gap``: one outage of 36 consecutive half-hours (a quarter of the window) per window. Straight
  lines across a daily peak are no better than the window mean, and CSDI, trained on a mix of random
  values and gaps, draws the daily shape.

Per seed, from ``python scripts/learning_spread.py tests/timeseries/test_learning.py --seeds 0-4
--threads 1`` (and ``--seeds 0-1 --threads 2``), 2026-12-06; same table in timeseries/README.md:

| seed | threads | forecast CRPS / seasonal naive | cov90 | random: CSDI / window mean | gaps: CSDI / best baseline |
|---|---|---|---|---|---|
| 0 | 1 | 0.663 | 0.841 | 0.131 | 0.148 |
| 1 | 1 | 0.610 | 0.860 | 0.133 | 0.148 |
| 2 | 1 | 0.783 | 0.766 | 0.142 | 0.143 |
| 3 | 1 | 0.574 | 0.839 | 0.132 | 0.159 |
| 4 | 1 | 0.623 | 0.903 | 0.142 | 0.160 |
| 0 | 2 | 0.662 | 0.839 | 0.130 | 0.149 |
| 1 | 2 | 0.607 | 0.856 | 0.133 | 0.150 |
| min | | 0.574 | 0.766 | 0.130 | 0.143 |
| max | | 0.783 | 0.903 | 0.142 | 0.160 |

Linear interpolation scores 0.106 of the window mean on random values (not asserted: it beats CSDI
there, 0.0165 against 0.020-0.022 CRPS) and 0.976 on gaps. Thresholds: 0.9, coverage in (0.7,
0.98), 0.3 and 0.3 (about twice the worst seed). The imputation model used to train 300 steps
without EMA: one thread gave 0.168-0.305 and 0.180-0.299, but two threads on seed 1 gave 0.479 on
random values, above the old threshold of 0.45. A brief run's last iterate depends on the
floating-point summation order; 600 steps with the weight EMA are both better and stable across
seeds and thread counts. 600 forecasting steps (as in the demo) would bring seed 2's forecast
from 0.783 to 0.62; the forecast already clears its threshold on every run, so it keeps 400.
"""

import numpy as np
import pytest

from difflab.core.lightning import train_briefly
from difflab.timeseries.data import ForecastDataModule
from difflab.timeseries.demo import build, train
from difflab.timeseries.evaluate import (
    baseline_samples,
    imputation_samples,
    imputation_truth,
    interpolation_samples,
    model_samples,
    score,
)
from difflab.timeseries.metrics import metric_table

pytestmark = pytest.mark.usefixtures("one_thread")

FORECAST_OVER_NAIVE = 0.9  # CRPS at most this fraction of seasonal naive's
COVERAGE_90 = (0.7, 0.98)  # empirical coverage of the central 90 % interval
RANDOM_OVER_MEAN = 0.3  # CSDI CRPS / window-mean CRPS, random values hidden (measured 0.130-0.142)
GAP_OVER_BEST = 0.3  # CSDI CRPS / best of (interpolation, window mean), one gap per window (0.143-0.160)
IMPUTE_STEPS = 600
IMPUTE_EMA = 0.99  # weight EMA of the imputation model


@pytest.mark.slow
def test_decomposed_gp_diffusion_beats_seasonal_naive(test_seed, record_property):
    dm = ForecastDataModule("taylor", context_length=96, prediction_length=48, batch_size=32)
    dm.setup()
    test = dm.test_set
    naive = score(baseline_samples(test, "seasonal_naive", dm.seasonality), test)["crps"]
    model = train(build("falda_gp", seed=test_seed), dm, max_steps=400, seed=test_seed)
    crps = score(model_samples(model, test, num_samples=32, seed=test_seed), test)
    for k, v in {"crps": crps["crps"], "cov90": crps["cov90"], "naive_crps": naive}.items():
        record_property(k, v)
    record_property("crps_over_naive", crps["crps"] / naive)
    assert np.isfinite(crps["crps"])
    assert crps["crps"] < FORECAST_OVER_NAIVE * naive, (crps, naive)
    assert COVERAGE_90[0] < crps["cov90"] < COVERAGE_90[1], crps


def _imputation(pattern: str, ratio: float, seed: int, record_property) -> tuple[float, float, float]:
    """``(CSDI, window mean, linear interpolation)`` CRPS on the test windows' hidden values."""
    dm = ForecastDataModule(
        "taylor",
        context_length=96,
        prediction_length=48,
        batch_size=32,
        task="impute",
        impute_ratio=ratio,
        impute_pattern=pattern,
    )
    dm.setup()
    test = dm.test_set
    y, m = imputation_truth(test)
    window_mean = np.stack([np.broadcast_to(test[k]["loc"].numpy(), y.shape[1:]) for k in range(len(test))])
    mean_crps = metric_table(window_mean[None].astype(np.float64), y, m)["crps"]
    interp_crps = metric_table(interpolation_samples(test), y, m)["crps"]
    model = build("csdi", seed=seed)
    train_briefly(model, dm, max_steps=IMPUTE_STEPS, seed=seed, gradient_clip_val=1.0, ema_decay=IMPUTE_EMA)
    crps = metric_table(imputation_samples(model, test, num_samples=16, seed=seed), y, m)["crps"]
    for k, v in {"crps": crps, "window_mean_crps": mean_crps, "interpolation_crps": interp_crps}.items():
        record_property(k, v)
    assert np.isfinite(crps)
    return crps, mean_crps, interp_crps


@pytest.mark.slow
def test_csdi_imputation_of_random_values_beats_window_mean(test_seed, record_property):
    crps, mean_crps, interp_crps = _imputation("random", 0.5, test_seed, record_property)
    record_property("crps_over_window_mean", crps / mean_crps)
    assert crps < RANDOM_OVER_MEAN * mean_crps, (crps, mean_crps, interp_crps)


@pytest.mark.slow
def test_csdi_imputation_of_long_gaps_beats_interpolation(test_seed, record_property):
    crps, mean_crps, interp_crps = _imputation("gap", 0.25, test_seed, record_property)
    best = min(mean_crps, interp_crps)
    record_property("crps_over_best_baseline", crps / best)
    assert crps < GAP_OVER_BEST * best, (crps, mean_crps, interp_crps)
