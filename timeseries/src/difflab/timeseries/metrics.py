r"""Probabilistic forecast metrics, computed as GluonTS's ``Evaluator`` computes them.

Shapes: ``samples`` ``(S, *shape)`` (``S`` sample paths, e.g. ``(S, N, H, D)`` for ``N`` windows of
``H`` steps and ``D`` series), ``target`` and ``mask`` ``(*shape)``; ``mask`` is 1 where the target
was observed (missing targets are left out of every sum). All metrics are in data units.

* **Quantile estimator.** GluonTS takes the quantile of a sample forecast by *nearest rank*:
  sort the ``S`` samples and take index ``round((S - 1) q)`` (numpy's round half to even), no
  interpolation (``estimator="nearest_rank"``, the default). CSDI uses ``torch.quantile``'s linear
  interpolation (``estimator="linear"``).
* **Weighted quantile loss** at level ``q``: ``wQL_q = 2 sum |(y - y_q)(1{y <= y_q} - q)| / sum |y|``
  (sums over all observed points).
* **CRPS** (GluonTS ``mean_wQuantileLoss``): the mean of ``wQL_q`` over ``q = 0.05, 0.10, ..., 0.95``
  (19 levels, the grid of the multivariate diffusion papers; GluonTS's own default is 0.1..0.9).
  It approximates ``sum CRPS / sum |y|`` through ``CRPS = 2 int_0^1 QL_q dq``.
* **CRPS-sum** (``m_sum_mean_wQuantileLoss``): sum targets and samples over the series axis (last),
  then the CRPS above.
* **Exact ensemble CRPS** per point: ``E|X - y| - 1/2 E|X - X'|`` over the empirical distribution of
  the samples (properscoring's ``crps_ensemble``); :func:`metric_table` reports ``sum / sum |y|``.
* **MSE / MAE** of the sample median; **coverage** of the central 50 % and 90 % intervals
  (``[q_0.25, q_0.75]`` and ``[q_0.05, q_0.95]``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from difflab.core.tables import markdown_table

QUANTILES = tuple(round(0.05 * k, 2) for k in range(1, 20))
Estimator = Literal["nearest_rank", "linear"]


def _np(x) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float64)


def _mask(target: np.ndarray, mask) -> np.ndarray:
    m = np.ones_like(target) if mask is None else _np(mask)
    return m * np.isfinite(target)


def sample_quantiles(samples, levels=QUANTILES, estimator: Estimator = "nearest_rank") -> np.ndarray:
    """Quantiles ``(Q, *shape)`` of ``samples`` ``(S, *shape)`` over the sample axis."""
    s = np.sort(_np(samples), axis=0)
    n = s.shape[0]
    levels = np.asarray(levels, dtype=np.float64)
    if estimator == "nearest_rank":
        idx = np.round((n - 1) * levels).astype(int)
        return s[idx]
    if estimator == "linear":
        return np.quantile(s, levels, axis=0)
    raise ValueError(f"estimator must be 'nearest_rank' or 'linear', got {estimator!r}")


def quantile_losses(samples, target, mask=None, levels=QUANTILES, estimator: Estimator = "nearest_rank") -> np.ndarray:
    """``QL_q = 2 sum |(y - y_q)(1{y <= y_q} - q)|`` over observed points, one per level ``(Q,)``."""
    y = _np(target)
    m = _mask(y, mask)
    y = np.where(m > 0, y, 0.0)
    qs = sample_quantiles(samples, levels, estimator)
    out = []
    for q, yq in zip(levels, qs):
        out.append(2.0 * np.sum(np.abs((y - yq) * ((y <= yq).astype(np.float64) - q)) * m))
    return np.asarray(out)


def weighted_quantile_losses(
    samples, target, mask=None, levels=QUANTILES, estimator: Estimator = "nearest_rank"
) -> np.ndarray:
    """``wQL_q = QL_q / sum |y|`` per level ``(Q,)``."""
    y = _np(target)
    m = _mask(y, mask)
    denom = np.sum(np.abs(np.where(m > 0, y, 0.0)))
    return quantile_losses(samples, target, mask, levels, estimator) / max(denom, 1e-12)


def crps_quantile(samples, target, mask=None, levels=QUANTILES, estimator: Estimator = "nearest_rank") -> float:
    """GluonTS's CRPS: mean weighted quantile loss over ``levels``."""
    return float(np.mean(weighted_quantile_losses(samples, target, mask, levels, estimator)))


def crps_sum(samples, target, mask=None, levels=QUANTILES, estimator: Estimator = "nearest_rank") -> float:
    """CRPS of the sum over the last (series) axis (GluonTS ``m_sum_mean_wQuantileLoss``).

    Missing points are left out of both sums; a time step with no observed series is left out.
    """
    y = _np(target)
    m = _mask(y, mask)
    s = _np(samples)
    ys = np.sum(np.where(m > 0, y, 0.0), axis=-1)
    ss = np.sum(np.where(m > 0, s, 0.0), axis=-1)
    ms = (m.sum(-1) > 0).astype(np.float64)
    return crps_quantile(ss, ys, ms, levels, estimator)


def crps_ensemble(samples, target) -> np.ndarray:
    r"""Exact CRPS of the empirical distribution of ``samples`` ``(S, *shape)`` at ``target`` ``(*shape)``.

    ``E|X - y| - 1/2 E|X - X'|`` with the ``1/S^2`` (biased) pair average, as properscoring;
    ``E|X - X'|`` from sorted samples: ``2/S^2 sum_i (2i - S - 1) x_(i)`` (i = 1..S).
    """
    s = np.sort(_np(samples), axis=0)
    y = _np(target)
    n = s.shape[0]
    term1 = np.mean(np.abs(s - y[None]), axis=0)
    w = (2 * np.arange(1, n + 1) - n - 1).reshape((n,) + (1,) * y.ndim)
    term2 = np.sum(w * s, axis=0) / n**2  # = 1/2 E|X - X'|
    return term1 - term2


def coverage(samples, target, mask=None, level: float = 0.9, estimator: Estimator = "nearest_rank") -> float:
    """Fraction of observed targets inside the central ``level`` interval of the samples."""
    y = _np(target)
    m = _mask(y, mask)
    lo, hi = sample_quantiles(samples, [(1 - level) / 2, (1 + level) / 2], estimator)
    inside = (y >= lo) & (y <= hi)
    return float(np.sum(inside * m) / max(np.sum(m), 1e-12))


def metric_table(samples, target, mask=None, estimator: Estimator = "nearest_rank") -> dict[str, float]:
    """All metrics of one forecast set: ``crps``, ``crps_sum``, ``crps_ens``, ``mse``, ``mae``, ``cov50``, ``cov90``.

    ``samples`` ``(S, ..., D)``, ``target`` / ``mask`` ``(..., D)``; ``crps_ens`` is the exact ensemble
    CRPS summed over observed points and divided by ``sum |y|`` (comparable with ``crps``).
    """
    s = _np(samples)
    y = _np(target)
    m = _mask(y, mask)
    y0 = np.where(m > 0, y, 0.0)
    med = sample_quantiles(s, [0.5], estimator)[0]
    n = max(m.sum(), 1e-12)
    return {
        "crps": crps_quantile(s, y, m, estimator=estimator),
        "crps_sum": crps_sum(s, y, m, estimator=estimator),
        "crps_ens": float(np.sum(crps_ensemble(s, y0) * m) / max(np.sum(np.abs(y0)), 1e-12)),
        "mse": float(np.sum((med - y0) ** 2 * m) / n),
        "mae": float(np.sum(np.abs(med - y0) * m) / n),
        "cov50": coverage(s, y, m, 0.5, estimator),
        "cov90": coverage(s, y, m, 0.9, estimator),
    }


def format_table(
    rows: dict[str, dict[str, float]], keys=("crps", "crps_sum", "crps_ens", "mae", "mse", "cov50", "cov90", "seconds")
) -> str:
    """A Markdown table, one row per method; values of 1e4 and more in ``.4g``, the others in ``.4f``."""
    keys = [k for k in keys if any(k in r for r in rows.values())]
    cells = [[name, *(_cell(r.get(k)) for k in keys)] for name, r in rows.items()]
    return markdown_table(cells, ["method", *keys], missing="—")


def _cell(v: float | None) -> str | None:
    return None if v is None else (f"{v:.4g}" if abs(v) >= 1e4 else f"{v:.4f}")


__all__ = [
    "QUANTILES",
    "sample_quantiles",
    "quantile_losses",
    "weighted_quantile_losses",
    "crps_quantile",
    "crps_sum",
    "crps_ensemble",
    "coverage",
    "metric_table",
    "format_table",
]
