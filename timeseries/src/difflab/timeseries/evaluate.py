r"""Scoring forecasters and baselines on the rolling windows of a split, and forecasting past a series' end.

Every scorer returns sample paths of the horizon in data units, ``(S, N, H, D)`` for ``N`` windows,
with the targets ``(N, H, D)`` and their observed mask, so that :func:`difflab.timeseries.metrics.metric_table`
scores every method the same way.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from difflab.timeseries.data.table import DataError, SeriesTable
from difflab.timeseries.data.windows import WindowDataset, calendar_features, window_scale
from difflab.timeseries.metrics import QUANTILES, metric_table, sample_quantiles
from difflab.timeseries.models.baselines import ets_forecast, naive_forecast, sarima_forecast, seasonal_naive

CSV_FLOATS = "%.7g"
"""How forecast CSVs write numbers: the samples' float32 precision, not float64 digits of noise."""


def horizon_truth(ds: WindowDataset) -> tuple[np.ndarray, np.ndarray]:
    """Targets ``(N, H, D)`` (0 where missing) and mask of a window set's horizons."""
    ys = np.stack([ds.table.values[h : h + ds.H] for h in ds.starts])
    mask = ~np.isnan(ys)
    return np.nan_to_num(ys), mask.astype(np.float64)


def baseline_samples(ds: WindowDataset, method: str, season: int, num_samples: int = 100, seed: int = 0) -> np.ndarray:
    """``(S, N, H, D)`` paths of ``seasonal_naive``, ``naive`` (last value), ``ets`` or ``sarima`` on every
    window of ``ds`` (point forecasts give one path)."""
    out = []
    for h in ds.starts:
        ctx = ds.table.values[h - ds.C : h]
        if method == "seasonal_naive":
            out.append(seasonal_naive(ctx, ds.H, season, 1))
        elif method == "naive":
            out.append(naive_forecast(ctx, ds.H, 1))
        elif method == "ets":
            out.append(ets_forecast(ctx, ds.H, season, num_samples, seed=seed + int(h)))
        elif method == "sarima":
            out.append(sarima_forecast(ctx, ds.H, season, num_samples, seed=seed + int(h)))
        else:
            raise ValueError(f"unknown baseline {method!r}; expected seasonal_naive, naive, ets or sarima")
    return np.stack(out, axis=1)


@torch.no_grad()
def model_samples(
    model,
    ds: WindowDataset,
    *,
    num_samples: int | None = None,
    batch_size: int = 16,
    seed: int = 0,
    sampler=None,
    steps: int | None = None,
) -> np.ndarray:
    """``(S, N, H, D)`` horizon paths in data units from a :class:`StochasticProcessDiffusion`."""
    from torch.utils.data import DataLoader

    gen = torch.Generator(device=model.device).manual_seed(seed)
    outs = []
    for batch in DataLoader(ds, batch_size=batch_size, shuffle=False):
        batch = {k: v.to(model.device) for k, v in batch.items()}
        s = model.forecast(batch, num_samples, sampler=sampler, steps=steps, generator=gen)
        outs.append(model.unscale(s, batch)[:, :, ds.C :].cpu().numpy())
    return np.concatenate(outs, axis=1)


def score(samples: np.ndarray, ds: WindowDataset, seconds: float | None = None) -> dict[str, float]:
    y, m = horizon_truth(ds)
    row = metric_table(samples, y, m)
    if seconds is not None:
        row["seconds"] = seconds
    return row


# ---------------------------------------------------------------------------------------------------- imputation
def imputation_truth(ds: WindowDataset) -> tuple[np.ndarray, np.ndarray]:
    """Values ``(N, L, D)`` of whole windows (0 where missing) and the mask of the hidden cells to impute."""
    ys, ms = [], []
    for k in range(len(ds)):
        item = ds[k]
        ys.append((item["x0"] * item["scale"] + item["loc"]).numpy())
        ms.append((item["target_mask"] * item["observed"]).numpy())
    return np.stack(ys).astype(np.float64), np.stack(ms).astype(np.float64)


def interpolation_samples(ds: WindowDataset) -> np.ndarray:
    """``(1, N, L, D)``: per series, linear interpolation in time between the given values of each
    window (constant beyond the first / last given value), the simple imputation baseline."""
    out = []
    for k in range(len(ds)):
        item = ds[k]
        x = (item["x0"] * item["scale"] + item["loc"]).numpy().astype(np.float64)
        given = item["cond_mask"].numpy() > 0
        t = item["times"].numpy().astype(np.float64)
        filled = np.zeros_like(x)
        for j in range(x.shape[1]):
            g = given[:, j]
            filled[:, j] = np.interp(t, t[g], x[g, j]) if g.any() else 0.0
        out.append(filled)
    return np.stack(out)[None]


@torch.no_grad()
def imputation_samples(
    model, ds: WindowDataset, *, num_samples: int | None = None, batch_size: int = 16, seed: int = 0
) -> np.ndarray:
    """``(S, N, L, D)`` imputed windows in data units (given cells kept) from a model trained with
    ``task: impute``; score them on :func:`imputation_truth`'s mask."""
    from torch.utils.data import DataLoader

    gen = torch.Generator(device=model.device).manual_seed(seed)
    outs = []
    for batch in DataLoader(ds, batch_size=batch_size, shuffle=False):
        batch = {k: v.to(model.device) for k, v in batch.items()}
        outs.append(model.unscale(model.forecast(batch, num_samples, generator=gen), batch).cpu().numpy())
    return np.concatenate(outs, axis=1)


def timed(fn, *args, **kwargs):
    t0 = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------------- future
def future_batch(
    table: SeriesTable, context_length: int, horizon: int, *, scaling: str = "standard", freq: str | None = None
) -> tuple[dict[str, torch.Tensor], np.ndarray]:
    """A one-window batch whose context is the last ``context_length`` rows and whose horizon is the
    next ``horizon`` steps after the series' end; returns ``(batch, future timestamps)``."""
    table.check_length(context_length, "the model's context length")
    freq = freq or table.freq
    if freq is None:
        raise DataError(f"{table.source}: timestamps are irregular; pass --freq to place the forecast steps")
    ctx_t = table.timestamps[-context_length:]
    fut_t = pd.date_range(pd.Timestamp(ctx_t[-1]), periods=horizon + 1, freq=freq)[1:].to_numpy("datetime64[ns]")
    ts = np.concatenate([ctx_t, fut_t])
    vals = np.concatenate([table.values[-context_length:], np.full((horizon, table.values.shape[1]), np.nan)])
    observed = ~np.isnan(vals)
    given = observed.copy()
    floor = 1e-3 * np.nanstd(table.values, axis=0)
    floor = np.where(np.isfinite(floor) & (floor > 0), floor, 1e-3)
    loc, sc = window_scale(vals, given, scaling, floor)  # type: ignore[arg-type]
    x0 = np.where(observed, (np.nan_to_num(vals) - loc) / sc, 0.0)
    step = table.step().value
    rel = (ts.astype(np.int64) - ts[0].astype(np.int64)) / step
    target = np.zeros_like(observed)
    target[context_length:] = True
    batch = {
        "x0": torch.tensor(x0, dtype=torch.float32)[None],
        "observed": torch.tensor(observed, dtype=torch.float32)[None],
        "cond_mask": torch.tensor(given, dtype=torch.float32)[None],
        "target_mask": torch.tensor(target, dtype=torch.float32)[None],
        "times": torch.tensor(rel, dtype=torch.float32)[None],
        "calendar": torch.from_numpy(calendar_features(ts))[None],
        "loc": torch.tensor(loc, dtype=torch.float32)[None],
        "scale": torch.tensor(sc, dtype=torch.float32)[None],
        "index": torch.tensor([len(table) - context_length]),
    }
    return batch, fut_t


def write_quantile_csv(path: str | Path, timestamps: np.ndarray, names: list[str], samples: np.ndarray) -> Path:
    """CSV with one row per (timestamp, series): ``mean`` and the quantiles 0.05..0.95 of ``samples`` ``(S, H, D)``."""
    qs = sample_quantiles(samples, QUANTILES)  # (Q, H, D)
    rows = []
    for h, t in enumerate(timestamps):
        for j, name in enumerate(names):
            row = {"timestamp": pd.Timestamp(t), "series": name, "mean": float(samples[:, h, j].mean())}
            row.update({f"q{q:.2f}": float(qs[k, h, j]) for k, q in enumerate(QUANTILES)})
            rows.append(row)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(path, index=False, float_format=CSV_FLOATS)
    return path


__all__ = [
    "imputation_truth",
    "interpolation_samples",
    "imputation_samples",
    "horizon_truth",
    "baseline_samples",
    "model_samples",
    "score",
    "timed",
    "future_batch",
    "write_quantile_csv",
]
