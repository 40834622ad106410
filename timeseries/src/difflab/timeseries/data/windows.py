r"""Windows of ``context + horizon`` consecutive rows, scaled per window, with observation masks.

A window starting at row ``i`` covers rows ``i .. i + C + H - 1``: the first ``C`` rows are the
context (the past), the last ``H`` the horizon (the future to forecast). Each item is a dict:

==============  ==========  =================================================================
key             shape       meaning
==============  ==========  =================================================================
``x0``          (L, D)      the window, scaled: ``(value - loc) / scale``; 0 where missing
``observed``    (L, D)      1 where a value was observed, 0 where missing
``cond_mask``   (L, D)      1 where the value is given to the model (observed context values;
                            for imputation a random subset of the observed values)
``target_mask`` (L, D)      1 where the model is trained / scored (observed horizon values;
                            for imputation the observed values hidden from the model)
``times``       (L,)        time since the window's first row, in steps of the series' frequency
                            (fractional for irregular timestamps)
``calendar``    (L, 4)      sin / cos of the time of day and of the day of week
``loc``         (1, D)      scaling location (in data units)
``scale``       (1, D)      scaling scale (in data units)
``index``       ()          row of the window's first step in the series
==============  ==========  =================================================================

with ``L = C + H``. Per-window scaling uses only the values the model is given (``cond_mask``):

* ``standard``: ``loc`` = mean, ``scale`` = std (+ ``1e-3`` of the series' overall std, so that a
  flat context does not blow up);
* ``mean``: ``loc = 0``, ``scale`` = mean absolute value (TSDiff / GluonTS mean scaling);
* ``none``: ``loc = 0``, ``scale = 1``.

Missing values are never filled in the data: they are zeros in ``x0`` *and* zeros in ``observed``,
so no loss or metric reads them.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from difflab.timeseries.data.table import DataError, SeriesTable

Scaling = Literal["standard", "mean", "none"]
Task = Literal["forecast", "impute"]
ImputePattern = Literal["random", "gap"]


def calendar_features(timestamps: np.ndarray) -> np.ndarray:
    """``(L, 4)`` float32: sin / cos of the time of day and of the day of the week."""
    ts = pd.DatetimeIndex(timestamps)
    day = (ts.hour * 3600 + ts.minute * 60 + ts.second).to_numpy() / 86400.0
    week = (ts.day_of_week.to_numpy() + day) / 7.0
    ang = 2 * np.pi * np.stack([day, week], axis=-1)
    return np.concatenate([np.sin(ang), np.cos(ang)], axis=-1).astype(np.float32)


def window_scale(
    values: np.ndarray, given: np.ndarray, scaling: Scaling, floor: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(loc, scale)`` of shape ``(1, D)`` from the given entries of ``values`` ``(L, D)``."""
    d = values.shape[1]
    if scaling == "none":
        return np.zeros((1, d)), np.ones((1, d))
    n = given.sum(0).clip(min=1)
    v = np.where(given, values, 0.0)
    if scaling == "mean":
        scale = np.abs(v).sum(0) / n
        return np.zeros((1, d)), np.maximum(scale, floor)[None]
    if scaling == "standard":
        mean = v.sum(0) / n
        var = (np.where(given, values - mean, 0.0) ** 2).sum(0) / n
        return mean[None], (np.sqrt(var) + floor)[None]
    raise ValueError(f"scaling must be standard, mean or none, got {scaling!r}")


class WindowDataset(Dataset):
    """Windows of a :class:`SeriesTable` whose horizons start at the given rows.

    Args:
        table: the series.
        context_length, prediction_length: ``C`` and ``H``.
        horizon_starts: rows where a window's horizon begins (each ``>= C`` and ``<= len - H``).
        scaling: per-window scaling (see module docstring).
        task: ``forecast`` (given = observed context) or ``impute`` (given = a random subset of the
            observed values of the whole window, the rest is the target).
        impute_ratio: fraction of observed values hidden for ``impute``; during training
            (``random_ratio=True``) the fraction is drawn from U(0, 1) per window, as CSDI's random strategy.
        impute_pattern: which values ``impute`` hides. ``random``: each value independently (CSDI's
            random strategy). ``gap``: in evaluation windows one contiguous run of
            ``round(impute_ratio * L)`` time steps of every series (a sensor outage), at a position
            drawn per window; in training windows, half the windows (drawn per window) get random
            values and the other half one gap of U(0, 1) * L steps, the analogue of CSDI's ``mix``
            strategy of random and structured masks.
        seed: seed of the imputation masks (evaluation masks are fixed per window).
    """

    def __init__(
        self,
        table: SeriesTable,
        context_length: int,
        prediction_length: int,
        horizon_starts: np.ndarray,
        *,
        scaling: Scaling = "standard",
        task: Task = "forecast",
        impute_ratio: float = 0.1,
        random_ratio: bool = False,
        impute_pattern: ImputePattern = "random",
        seed: int = 0,
    ) -> None:
        if context_length < 1 or prediction_length < 1:
            raise ValueError(
                f"context_length and prediction_length must be >= 1, got {context_length}, {prediction_length}"
            )
        if task not in ("forecast", "impute"):
            raise ValueError(f"task must be 'forecast' or 'impute', got {task!r}")
        if impute_pattern not in ("random", "gap"):
            raise ValueError(f"impute_pattern must be 'random' or 'gap', got {impute_pattern!r}")
        self.impute_pattern = impute_pattern
        self.table = table
        self.C, self.H = context_length, prediction_length
        self.starts = np.asarray(horizon_starts, dtype=np.int64)
        if len(self.starts) and (self.starts.min() < self.C or self.starts.max() > len(table) - self.H):
            raise ValueError("horizon_starts out of range for this table")
        self.scaling, self.task, self.impute_ratio, self.random_ratio, self.seed = (
            scaling,
            task,
            impute_ratio,
            random_ratio,
            seed,
        )
        self.epoch = 0
        obs = table.observed
        self._floor = 1e-3 * np.nanstd(np.where(obs, table.values, np.nan), axis=0)
        self._floor = np.where(np.isfinite(self._floor) & (self._floor > 0), self._floor, 1e-3)
        step = table.step().value
        self._rel = (table.timestamps.astype(np.int64) - table.timestamps[0].astype(np.int64)) / step
        self._cal = calendar_features(table.timestamps)

    def __len__(self) -> int:
        return len(self.starts)

    def _hidden(self, shape: tuple[int, int], h0: int) -> np.ndarray:
        """``(L, D)`` bool: the cells ``impute`` hides in the window whose horizon starts at row ``h0``."""
        rng = np.random.default_rng([self.seed, h0, self.epoch if self.random_ratio else 0])
        ratio = rng.uniform(0.0, 1.0) if self.random_ratio else self.impute_ratio
        gap = self.impute_pattern == "gap" and (not self.random_ratio or rng.uniform() < 0.5)
        if not gap:
            return rng.uniform(size=shape) < ratio
        length = min(shape[0], max(1, round(ratio * shape[0])))
        start = int(rng.integers(0, shape[0] - length + 1))
        hide = np.zeros(shape, dtype=bool)
        hide[start : start + length] = True
        return hide

    def __getitem__(self, k: int) -> dict[str, torch.Tensor]:
        h0 = int(self.starts[k])
        a, b = h0 - self.C, h0 + self.H
        vals = self.table.values[a:b]
        observed = ~np.isnan(vals)
        given = observed.copy()
        if self.task == "forecast":
            given[self.C :] = False
            target = observed.copy()
            target[: self.C] = False
        else:
            hide = self._hidden(vals.shape, h0) & observed
            given = observed & ~hide
            target = hide
        loc, scale = window_scale(vals, given, self.scaling, self._floor)
        x0 = np.where(observed, (np.nan_to_num(vals) - loc) / scale, 0.0)
        times = self._rel[a:b] - self._rel[a]
        return {
            "x0": torch.from_numpy(x0.astype(np.float32)),
            "observed": torch.from_numpy(observed.astype(np.float32)),
            "cond_mask": torch.from_numpy(given.astype(np.float32)),
            "target_mask": torch.from_numpy(target.astype(np.float32)),
            "times": torch.from_numpy(times.astype(np.float32)),
            "calendar": torch.from_numpy(self._cal[a:b]),
            "loc": torch.from_numpy(loc.astype(np.float32)),
            "scale": torch.from_numpy(scale.astype(np.float32)),
            "index": torch.tensor(a),
        }


def horizon_starts_between(
    table: SeriesTable,
    context_length: int,
    prediction_length: int,
    start,
    end,
    stride: int = 1,
    *,
    whole_horizon_inside: bool = True,
) -> np.ndarray:
    """Rows ``r`` (every ``stride``-th) where a horizon starting at ``r`` lies in ``[start, end)``.

    With ``whole_horizon_inside`` the horizon's last step must also be before ``end``.
    """
    ts = table.timestamps
    lo = 0 if start is None else int(np.searchsorted(ts, np.datetime64(pd.Timestamp(start))))
    hi = len(ts) if end is None else int(np.searchsorted(ts, np.datetime64(pd.Timestamp(end))))
    lo = max(lo, context_length)
    last = (hi - prediction_length) if whole_horizon_inside else hi - 1
    last = min(last, len(ts) - prediction_length)
    if last < lo:
        return np.zeros(0, dtype=np.int64)
    return np.arange(lo, last + 1, stride, dtype=np.int64)


def check_window_length(table: SeriesTable, context_length: int, prediction_length: int) -> None:
    table.check_length(
        context_length + prediction_length, f"context + horizon = {context_length} + {prediction_length}"
    )


__all__ = [
    "ImputePattern",
    "Scaling",
    "Task",
    "WindowDataset",
    "calendar_features",
    "window_scale",
    "horizon_starts_between",
    "check_window_length",
    "DataError",
]
