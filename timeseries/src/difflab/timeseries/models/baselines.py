r"""Baselines in every table: seasonal naive and exponential smoothing (statsmodels ETS).

Both work window by window on data units: ``context`` ``(C, D)`` with ``NaN`` for missing values,
and return sample paths ``(S, H, D)``.

* :func:`seasonal_naive`: ``y_{T+h} = y_{T+h-km}`` with ``k = ceil(h/m)`` the smallest number of
  seasons reaching back into the context; a missing seasonal value is taken one more season back
  (the last observed value when none is found). A point forecast: every sample path is the same, so
  its CRPS equals its absolute error.
* :func:`ets_forecast`: statsmodels' ``ETSModel`` (additive error, additive damped trend, additive
  season of length ``m`` when the context holds two seasons) fitted to each context by maximum
  likelihood, and ``S`` paths simulated from the fitted state-space model. Missing context values are
  interpolated linearly *for this baseline's fit only*.
"""

from __future__ import annotations

import warnings

import numpy as np


def seasonal_naive(context: np.ndarray, horizon: int, season: int, num_samples: int = 1) -> np.ndarray:
    """Seasonal-naive paths ``(num_samples, H, D)`` from ``context`` ``(C, D)`` (NaN = missing)."""
    ctx = np.asarray(context, dtype=np.float64)
    if ctx.ndim == 1:
        ctx = ctx[:, None]
    c, d = ctx.shape
    m = max(int(season), 1)
    out = np.empty((horizon, d))
    for j in range(d):
        col = ctx[:, j]
        obs = np.nonzero(~np.isnan(col))[0]
        last = col[obs[-1]] if len(obs) else 0.0
        for h in range(horizon):
            k = (h // m) + 1
            idx = c + h - k * m
            while idx >= 0 and np.isnan(col[idx]):
                idx -= m
            out[h, j] = col[idx] if idx >= 0 else last
    return np.broadcast_to(out, (num_samples, horizon, d)).copy()


def ets_forecast(context: np.ndarray, horizon: int, season: int, num_samples: int = 100, seed: int = 0) -> np.ndarray:
    """ETS sample paths ``(num_samples, H, D)`` from ``context`` ``(C, D)``; needs statsmodels."""
    try:
        from statsmodels.tsa.exponential_smoothing.ets import ETSModel
    except ImportError as err:
        raise ImportError("the ETS baseline needs statsmodels: pip install statsmodels") from err
    ctx = np.asarray(context, dtype=np.float64)
    if ctx.ndim == 1:
        ctx = ctx[:, None]
    c, d = ctx.shape
    out = np.empty((num_samples, horizon, d))
    for j in range(d):
        col = ctx[:, j].copy()
        nan = np.isnan(col)
        if nan.all():
            out[:, :, j] = 0.0
            continue
        if nan.any():
            idx = np.arange(c)
            col[nan] = np.interp(idx[nan], idx[~nan], col[~nan])
        seasonal = "add" if season > 1 and c >= 2 * season else None
        scale = np.std(col) or 1.0
        z = (col - col.mean()) / scale  # fit in standard units for numerical stability
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                model = ETSModel(
                    z,
                    error="add",
                    trend="add",
                    damped_trend=True,
                    seasonal=seasonal,
                    seasonal_periods=season if seasonal else None,
                    initialization_method="heuristic" if seasonal else "estimated",
                )
                fit = model.fit(disp=False, maxiter=200)
                paths = fit.simulate(
                    horizon, repetitions=num_samples, anchor="end", rng=np.random.default_rng([seed, j])
                )
                paths = np.asarray(paths).reshape(horizon, num_samples).T
            except Exception:  # a fit that fails falls back to the seasonal-naive point forecast
                paths = seasonal_naive(z[:, None], horizon, season, num_samples)[..., 0]
        if not np.isfinite(paths).all():
            paths = seasonal_naive(z[:, None], horizon, season, num_samples)[..., 0]
        out[:, :, j] = paths * scale + col.mean()
    return out


__all__ = ["seasonal_naive", "ets_forecast"]
