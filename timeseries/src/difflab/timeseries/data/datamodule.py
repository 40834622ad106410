r"""``ForecastDataModule``: windows of a built-in default series or of a file, split by date.

Batches are the dicts of :class:`~difflab.timeseries.data.windows.WindowDataset`, stacked:
``x0, observed, cond_mask, target_mask`` ``(B, L, D)``, ``times`` ``(B, L)``, ``calendar``
``(B, L, 4)``, ``loc, scale`` ``(B, 1, D)``, ``index`` ``(B,)``, with ``L = context + horizon``.

Splits: training windows lie entirely before ``val_start``; validation windows have their whole
horizon in ``[val_start, test_start)``; test windows their horizon in ``[test_start, end]``, every
``eval_stride`` rows (default: the horizon, i.e. non-overlapping rolling forecasts). Context may
reach back across a split date. The built-in series have fixed split dates
(:data:`~difflab.timeseries.data.sources.SPLITS`); for a file they default to 70 % / 10 % / 20 % of the
time range, moved earlier where a short file would otherwise leave the validation or the test split
without a whole horizon.

What the data decides is read from the module and linked into the model by the command line
(:data:`difflab.timeseries.cli.LINKS`): :attr:`ForecastDataModule.num_series`,
:attr:`~ForecastDataModule.series_names`, :attr:`~ForecastDataModule.frequency` and the window lengths.
"""

from __future__ import annotations

import warnings
from typing import Literal

import numpy as np
import pandas as pd

from difflab.core.lightning.data import SplitDataModule
from difflab.timeseries.data.sources import LOADERS, SEASONALITY, SPLITS, load_builtin
from difflab.timeseries.data.table import DataError, FileFormat, SeriesTable, read_table
from difflab.timeseries.data.windows import (
    ImputePattern,
    Scaling,
    Task,
    WindowDataset,
    check_window_length,
    horizon_starts_between,
)


class ForecastDataModule(SplitDataModule):
    """Context / horizon windows for forecasting (or imputation) with date splits.

    Args:
        dataset: a built-in series (``taylor``, ``sf_temps``, ``tmy3``) or a file path (wide CSV, long
            CSV or GluonTS JSON lines; see :mod:`difflab.timeseries.data.table`).
        format: file format (``auto`` by default).
        columns: series to keep (all by default).
        timestamp_column: timestamp column of a wide CSV (auto-detected by default).
        freq: pandas frequency (inferred if not given; JSON lines need it unless the file has it).
        context_length: ``C``, the past steps the model sees.
        prediction_length: ``H``, the future steps to forecast.
        val_start, test_start: split dates (built-in series have fixed ones).
        scaling: per-window scaling ``standard``, ``mean`` or ``none``.
        task: ``forecast`` or ``impute``.
        impute_ratio: fraction of observed values hidden in evaluation windows for ``impute``.
        impute_pattern: ``random`` values or one contiguous ``gap`` per window (see
            :class:`~difflab.timeseries.data.windows.WindowDataset`).
        batch_size: training and evaluation batch size.
        train_stride: step between training windows.
        eval_stride: step between validation / test windows (default: ``prediction_length``).
        max_eval_windows: keep at most this many validation and test windows (evenly spaced); None: all.
        seed: training order and imputation masks.
        num_workers: DataLoader workers.
    """

    def __init__(
        self,
        dataset: str = "taylor",
        format: FileFormat = "auto",
        columns: list[str] | None = None,
        timestamp_column: str | None = None,
        freq: str | None = None,
        context_length: int = 336,
        prediction_length: int = 48,
        val_start: str | None = None,
        test_start: str | None = None,
        scaling: Scaling = "standard",
        task: Task = "forecast",
        impute_ratio: float = 0.1,
        impute_pattern: ImputePattern = "random",
        batch_size: int = 32,
        train_stride: int = 1,
        eval_stride: int | None = None,
        max_eval_windows: int | None = None,
        seed: int = 0,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if scaling not in ("standard", "mean", "none"):
            raise ValueError(f"ForecastDataModule: scaling must be standard, mean or none, got {scaling!r}")
        if task not in ("forecast", "impute"):
            raise ValueError(f"ForecastDataModule: task must be forecast or impute, got {task!r}")
        if impute_pattern not in ("random", "gap"):
            raise ValueError(f"ForecastDataModule: impute_pattern must be random or gap, got {impute_pattern!r}")
        for name, value in (
            ("context_length", context_length),
            ("prediction_length", prediction_length),
            ("batch_size", batch_size),
            ("train_stride", train_stride),
        ):
            if value < 1:
                raise ValueError(f"ForecastDataModule: {name} must be >= 1, got {value}")
        self.save_hyperparameters()
        self.dataset, self.format, self.columns = dataset, format, columns
        self.timestamp_column, self.freq = timestamp_column, freq
        self.context_length, self.prediction_length = context_length, prediction_length
        self.val_start, self.test_start = val_start, test_start
        self.scaling, self.task, self.impute_ratio = scaling, task, impute_ratio
        self.impute_pattern = impute_pattern
        self.batch_size, self.train_stride = batch_size, train_stride
        self.eval_stride = eval_stride or prediction_length
        self.max_eval_windows, self.seed, self.num_workers = max_eval_windows, seed, num_workers
        self.table: SeriesTable | None = None
        self.train_set = self.val_set = self.test_set = None

    # ------------------------------------------------------------------ what the data decides
    @property
    def num_series(self) -> int:
        """``D``, the number of series (the columns kept)."""
        return len(self.load().names)

    @property
    def series_names(self) -> list[str]:
        """The names of the ``D`` series, in the order the model sees them."""
        return [str(name) for name in self.load().names]

    @property
    def frequency(self) -> str | None:
        """The series' pandas frequency (given as ``freq`` or inferred; ``None`` for irregular timestamps)."""
        return self.load().freq

    # ------------------------------------------------------------------ loading
    @property
    def seasonality(self) -> int:
        """Season length in steps (built-in series: known; files: from the frequency, 1 if unknown)."""
        if self.dataset in SEASONALITY:
            return SEASONALITY[self.dataset]
        table = self.load()
        step = table.step()
        for period in (pd.Timedelta("1D"), pd.Timedelta("7D")):
            if step < period and (period / step).is_integer() and period / step <= self.context_length:
                return int(period / step)
        return 1

    def load(self) -> SeriesTable:
        """The whole series (all splits)."""
        if self.table is None:
            if self.dataset in LOADERS:
                table = load_builtin(self.dataset)
                if self.columns:
                    table = table.select(self.columns)
            else:
                table = read_table(
                    self.dataset,
                    format=self.format,
                    columns=self.columns,
                    timestamp_column=self.timestamp_column,
                    freq=self.freq,
                )
            if self.freq is not None and table.freq is None:
                table.freq = self.freq
            check_window_length(table, self.context_length, self.prediction_length)
            self.table = table
        return self.table

    def split_dates(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """``(val_start, test_start)``: given, fixed for built-in series, or 70 % / 80 % of the time range."""
        table = self.load()
        if self.val_start is not None and self.test_start is not None:
            return pd.Timestamp(self.val_start), pd.Timestamp(self.test_start)
        if self.dataset in SPLITS:
            s = SPLITS[self.dataset]
            return pd.Timestamp(self.val_start or s.val_start), pd.Timestamp(self.test_start or s.test_start)
        t0, t1 = pd.Timestamp(table.timestamps[0]), pd.Timestamp(table.timestamps[-1])
        val = pd.Timestamp(self.val_start) if self.val_start else t0 + 0.7 * (t1 - t0)
        test = pd.Timestamp(self.test_start) if self.test_start else t0 + 0.8 * (t1 - t0)
        return self._fit_short(val, test)

    def _fit_short(self, val: pd.Timestamp, test: pd.Timestamp) -> tuple[pd.Timestamp, pd.Timestamp]:
        """Split dates of a file moved earlier (only those not given) so that the test and the validation
        split each hold a whole horizon; a file too short for that and a training window is an error."""
        table, C, H = self.load(), self.context_length, self.prediction_length
        ts = table.timestamps
        n = len(ts)
        i_test = int(np.searchsorted(ts, np.datetime64(test)))
        if self.test_start is None:
            i_test = min(i_test, n - H)
        i_val = int(np.searchsorted(ts, np.datetime64(val)))
        if self.val_start is None:
            i_val = min(i_val, i_test - H)
        if i_val < C + H:
            raise DataError(
                f"{table.source}: {n} rows are too few for a training window, a validation and a test horizon "
                f"(context + 3 x horizon = {C} + 3 x {H} = {C + 3 * H} rows at least); shorten "
                "--data.init_args.context_length or --data.init_args.prediction_length, or give a longer series"
            )
        return pd.Timestamp(ts[i_val]), pd.Timestamp(ts[i_test]) if i_test < n else test

    def _thin(self, starts: np.ndarray) -> np.ndarray:
        if self.max_eval_windows is None or len(starts) <= self.max_eval_windows:
            return starts
        idx = np.linspace(0, len(starts) - 1, self.max_eval_windows).round().astype(int)
        return starts[idx]

    def windows(self, split: Literal["train", "val", "test"], *, stride: int | None = None) -> WindowDataset:
        """The :class:`WindowDataset` of a split."""
        table = self.load()
        vs, ts = self.split_dates()
        C, H = self.context_length, self.prediction_length
        if split == "train":
            starts = horizon_starts_between(table, C, H, None, vs, stride or self.train_stride)
        elif split == "val":
            starts = self._thin(horizon_starts_between(table, C, H, vs, ts, stride or self.eval_stride))
        else:
            starts = self._thin(horizon_starts_between(table, C, H, ts, None, stride or self.eval_stride))
        if len(starts) == 0:
            raise DataError(
                f"{table.source}: the {split} split (val_start {vs}, test_start {ts}) holds no window of "
                f"context {C} + horizon {H} rows; move the split dates or shorten the windows"
            )
        return WindowDataset(
            table,
            C,
            H,
            starts,
            scaling=self.scaling,
            task=self.task,
            impute_ratio=self.impute_ratio,
            random_ratio=split == "train",
            impute_pattern=self.impute_pattern,
            seed=self.seed,
        )

    def setup(self, stage: str | None = None) -> None:
        if self.train_set is None:
            self.train_set = self.windows("train")
            self.val_set = self.windows("val")
            self.test_set = self.windows("test")
            if len(self.train_set) < self.batch_size:  # a full batch is never dropped to nothing
                warnings.warn(
                    f"{self.load().source}: {len(self.train_set)} training windows, fewer than batch_size "
                    f"{self.batch_size}; training batches hold {len(self.train_set)} windows",
                    stacklevel=2,
                )
                self.batch_size = len(self.train_set)


__all__ = ["ForecastDataModule"]
