"""Time-series data: readers (wide / long CSV, GluonTS JSON lines), the offline default series,
context/horizon windows with masks and per-window scaling, and the Lightning data module."""

from difflab.timeseries.data.datamodule import ForecastDataModule
from difflab.timeseries.data.sources import SEASONALITY, SPLITS, load_builtin, regularize
from difflab.timeseries.data.table import DataError, SeriesTable, read_jsonl, read_long_csv, read_table, read_wide_csv
from difflab.timeseries.data.windows import WindowDataset, calendar_features

__all__ = [
    "ForecastDataModule",
    "SEASONALITY",
    "SPLITS",
    "load_builtin",
    "regularize",
    "DataError",
    "SeriesTable",
    "read_jsonl",
    "read_long_csv",
    "read_table",
    "read_wide_csv",
    "WindowDataset",
    "calendar_features",
]
