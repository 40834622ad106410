r"""Baselines in every table: seasonal naive, last-value naive, exponential smoothing (statsmodels ETS)
and seasonal ARIMA (statsmodels SARIMAX).

All work window by window on data units: ``context`` ``(C, D)`` with ``NaN`` for missing values,
and return sample paths ``(S, H, D)``.

* :func:`seasonal_naive`: ``y_{T+h} = y_{T+h-km}`` with ``k = ceil(h/m)`` the smallest number of
  seasons reaching back into the context; a missing seasonal value is taken one more season back
  (the last observed value when none is found). A point forecast: every sample path is the same, so
  its CRPS equals its absolute error.
* :func:`ets_forecast`: statsmodels' ``ETSModel`` (additive error, additive damped trend, additive
  season of length ``m`` when the context holds two seasons) fitted to each context by maximum
  likelihood, and ``S`` paths simulated from the fitted state-space model. Missing context values are
  interpolated linearly *for this baseline's fit only*.
* :func:`naive_forecast`: ``y_{T+h} = y_T``, the last observed value (a point forecast).
* :func:`sarima_forecast`: seasonal ARIMA ``(1, 0, 1) x (0, 1, 0)_m`` (an ARMA(1, 1) on the seasonally
  differenced series) fitted by maximum likelihood (statsmodels ``SARIMAX``) to each standardised
  context, paths simulated from the fitted model. A seasonal MA term was tried: 28 s per window at
  ``m = 48`` (the state holds a whole season) for a worse CRPS on taylor (0.060 against 0.054).
"""

from __future__ import annotations

import warnings

import numpy as np


def _as_columns(context: np.ndarray) -> np.ndarray:
    """The context as float64 columns ``(C, D)`` (a 1-D series is one column)."""
    ctx = np.asarray(context, dtype=np.float64)
    return ctx[:, None] if ctx.ndim == 1 else ctx


def seasonal_naive(context: np.ndarray, horizon: int, season: int, num_samples: int = 1) -> np.ndarray:
    """Seasonal-naive paths ``(num_samples, H, D)`` from ``context`` ``(C, D)`` (NaN = missing)."""
    ctx = _as_columns(context)
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
    ctx = _as_columns(context)
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


def naive_forecast(context: np.ndarray, horizon: int, num_samples: int = 1) -> np.ndarray:
    """Last-value paths ``(num_samples, H, D)``: every step is the last observed value of the context."""
    ctx = _as_columns(context)
    last = np.zeros(ctx.shape[1])
    for j in range(ctx.shape[1]):
        obs = np.nonzero(~np.isnan(ctx[:, j]))[0]
        last[j] = ctx[obs[-1], j] if len(obs) else 0.0
    return np.broadcast_to(last, (num_samples, horizon, ctx.shape[1])).copy()


def simulate_state_space(res, horizon: int, num_samples: int, rng: np.random.Generator) -> np.ndarray:
    r"""``(S, H)`` draws of the next ``H`` observations of a fitted univariate, time-invariant
    statsmodels state-space model given its data: the state after the last observation is drawn from
    the filter's prediction ``N(a_{T+1}, P_{T+1})``, then ``y_h = Z a_h + d + \varepsilon_h`` and
    ``a_{h+1} = T a_h + c + R \eta_h`` with ``\varepsilon ~ N(0, H)``, ``\eta ~ N(0, Q)``."""
    mat = {
        k: np.asarray(getattr(res, k))[..., -1]
        for k in ("design", "obs_intercept", "obs_cov", "transition", "state_intercept", "selection", "state_cov")
    }
    a_mean = np.asarray(res.predicted_state)[:, -1]
    a_cov = np.asarray(res.predicted_state_cov)[:, :, -1]
    k = a_mean.shape[0]
    a = a_mean + rng.standard_normal((num_samples, k)) @ _psd_sqrt(a_cov).T
    q = _psd_sqrt(mat["state_cov"])
    h_std = float(np.sqrt(max(mat["obs_cov"].reshape(-1)[0], 0.0)))
    out = np.empty((num_samples, horizon))
    for h in range(horizon):
        out[:, h] = a @ mat["design"][0] + mat["obs_intercept"][0] + h_std * rng.standard_normal(num_samples)
        eta = rng.standard_normal((num_samples, q.shape[0])) @ q.T
        a = a @ mat["transition"].T + mat["state_intercept"] + eta @ mat["selection"].T
    return out


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """A square root ``L`` with ``L L^T = cov`` of a positive semi-definite matrix."""
    vals, vecs = np.linalg.eigh((cov + cov.T) / 2)
    return vecs * np.sqrt(np.clip(vals, 0.0, None))


def sarima_forecast(
    context: np.ndarray, horizon: int, season: int, num_samples: int = 100, seed: int = 0
) -> np.ndarray:
    r"""SARIMA ``(1,0,1) x (0,1,0)_m`` sample paths ``(num_samples, H, D)`` from ``context`` ``(C, D)``
    (NaN = missing); needs statsmodels.

    The seasonal difference ``w_t = y_t - y_{t-m}`` is an ARMA(1, 1), ``w_t = phi w_{t-1} + e_t +
    theta e_{t-1}``, fitted by maximum likelihood (statsmodels ``SARIMAX`` on ``w``, conditional on the
    first season: its ``simple_differencing``); ``S`` paths of ``w`` are simulated from the fitted state
    at the context's end and integrated back, ``y_{T+h} = y_{T+h-m} + w_{T+h}`` (for ``h > m`` the
    recursion uses the path's own earlier values), so the paths are exact draws of the fitted SARIMA's
    predictive distribution. A season that does not fit twice in the context gives an ARMA(1, 1) with
    a constant on ``y`` itself; a fit that fails falls back to seasonal naive. Missing context values
    are interpolated for the integration's base only (the fit skips them).
    """
    try:
        from statsmodels.tsa.statespace.sarimax import SARIMAX
    except ImportError as err:
        raise ImportError("the SARIMA baseline needs statsmodels: pip install statsmodels") from err
    ctx = _as_columns(context)
    c, d = ctx.shape
    m = int(season) if season > 1 and c >= 2 * season else 0
    rng = np.random.default_rng(seed)
    out = np.empty((num_samples, horizon, d))
    for j in range(d):
        col = ctx[:, j]
        obs = ~np.isnan(col)
        if obs.sum() < max(3, m + 3):
            out[:, :, j] = seasonal_naive(col[:, None], horizon, season, 1)[0, :, 0]
            continue
        mu, scale = np.nanmean(col), np.nanstd(col) or 1.0
        z = (col - mu) / scale
        idx = np.arange(c)
        base = np.interp(idx, idx[obs], z[obs])
        w = z[m:] - z[:-m] if m else z
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fit = SARIMAX(w, order=(1, 0, 1), trend="n" if m else "c").fit(disp=False, maxiter=100)
                sim = simulate_state_space(fit.filter_results, horizon, num_samples, rng)  # (S, H)
                if m:
                    ext = np.concatenate([np.broadcast_to(base, (num_samples, c)), sim], axis=1)
                    for h in range(horizon):
                        ext[:, c + h] += ext[:, c + h - m]
                    sim = ext[:, c:]
                paths = sim
            except Exception:  # a fit that fails falls back to the seasonal-naive point forecast
                paths = seasonal_naive(z[:, None], horizon, season, num_samples)[..., 0]
        if not np.isfinite(paths).all():
            paths = seasonal_naive(z[:, None], horizon, season, num_samples)[..., 0]
        out[:, :, j] = paths * scale + mu
    return out


__all__ = ["seasonal_naive", "naive_forecast", "ets_forecast", "sarima_forecast"]
