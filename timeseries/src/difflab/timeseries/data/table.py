r"""Reading time series from disk into one aligned table with a mask of observed values.

Three on-disk formats are read (``format="auto"`` picks by file name and header):

* **wide CSV** (the ETT files): a timestamp column (``date`` / ``timestamp`` / ``time`` or the
  first column) and one numeric column per series::

      date,HUFL,HULL,OT
      2016-07-01 00:00:00,5.827,2.009,30.531

* **long CSV**: columns ``item_id, timestamp, value`` (one row per item and time); items are
  aligned on the union of their timestamps;
* **GluonTS JSON lines**: one object per line, ``{"start": "2021-01-01 00:00", "target": [...]}``
  (optional ``"item_id"``); needs ``freq`` (given, or from a ``"freq"`` key) to build timestamps.
  ``null`` / ``"NaN"`` targets are missing values.

Missing values (empty cells, ``NaN``, ``null``, and the holes left by aligning items) are kept as
``NaN`` in :attr:`SeriesTable.values` and reported by :attr:`SeriesTable.observed`; nothing is ever
filled. Irregular timestamps are kept as they are; :attr:`SeriesTable.freq` is the inferred pandas
frequency or ``None`` for irregular data, and :meth:`SeriesTable.step` the time unit used for
relative times (the frequency, or the median spacing).

Bad input raises :class:`DataError` naming the file, the column and the row (1-based line number of
the file, header = line 1): unparsable or duplicate timestamps, non-numeric values, series shorter
than ``context + horizon``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from difflab.core.errors import UserError

FileFormat = Literal["auto", "wide", "long", "jsonl"]
_TIME_NAMES = ("date", "timestamp", "time", "datetime", "ds")


class DataError(UserError, ValueError):
    """Bad time-series input; the message names the file, column and row (a command line prints it
    as one line, :class:`~difflab.core.errors.UserError`)."""


@dataclass
class SeriesTable:
    """Series aligned on common timestamps.

    Attributes:
        timestamps: ``(L,)`` ``datetime64[ns]``, strictly increasing.
        values: ``(L, D)`` float64, ``NaN`` where a value is missing.
        names: the ``D`` series names.
        source: where the data came from (file name or built-in source).
        freq: pandas frequency string (``"30min"``, ``"h"``) or ``None`` for irregular timestamps.
    """

    timestamps: np.ndarray
    values: np.ndarray
    names: list[str]
    source: str
    freq: str | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.timestamps = np.asarray(self.timestamps, dtype="datetime64[ns]")
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.ndim == 1:
            self.values = self.values[:, None]
        if self.values.shape != (len(self.timestamps), len(self.names)):
            raise DataError(
                f"{self.source}: values of shape {self.values.shape} do not match "
                f"{len(self.timestamps)} timestamps x {len(self.names)} series"
            )

    @property
    def observed(self) -> np.ndarray:
        """``(L, D)`` bool, True where a value was observed."""
        return ~np.isnan(self.values)

    def __len__(self) -> int:
        return len(self.timestamps)

    @property
    def regular(self) -> bool:
        return self.freq is not None

    def step(self) -> pd.Timedelta:
        """The time unit of relative times: one period of ``freq``, or the median spacing."""
        if self.freq is not None:
            off = pd.tseries.frequencies.to_offset(self.freq)
            try:
                return pd.Timedelta(off)
            except ValueError:  # calendar offsets (month, business day): median spacing
                pass
        if len(self.timestamps) < 2:
            return pd.Timedelta(1, "s")
        return pd.Timedelta(np.median(np.diff(self.timestamps)).astype("timedelta64[ns]"))

    def select(self, columns: list[str]) -> SeriesTable:
        """The table restricted to ``columns`` (in that order)."""
        missing = [c for c in columns if c not in self.names]
        if missing:
            raise DataError(f"{self.source}: no column(s) {missing}; available: {self.names}")
        idx = [self.names.index(c) for c in columns]
        return SeriesTable(self.timestamps, self.values[:, idx], list(columns), self.source, self.freq, dict(self.meta))

    def slice_time(self, start=None, end=None) -> SeriesTable:
        """Rows with ``start <= timestamp < end`` (either bound may be None)."""
        keep = np.ones(len(self), dtype=bool)
        if start is not None:
            keep &= self.timestamps >= np.datetime64(pd.Timestamp(start).tz_localize(None))
        if end is not None:
            keep &= self.timestamps < np.datetime64(pd.Timestamp(end).tz_localize(None))
        return SeriesTable(
            self.timestamps[keep], self.values[keep], list(self.names), self.source, self.freq, dict(self.meta)
        )

    def check_length(self, needed: int, what: str = "context + horizon") -> None:
        if len(self) < needed:
            raise DataError(
                f"{self.source}: column(s) {self.names}: the series has {len(self)} rows (up to row "
                f"{len(self) + 1}), shorter than {what} = {needed}"
            )

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, index=pd.DatetimeIndex(self.timestamps, name="timestamp"), columns=self.names)


# ---------------------------------------------------------------------------------------------------- helpers
def infer_freq(timestamps: np.ndarray) -> str | None:
    """pandas' inferred frequency of strictly increasing timestamps, ``None`` when irregular."""
    if len(timestamps) < 3:
        return None
    try:
        with warnings.catch_warnings():  # pandas 3 announces an offset return type; keep the string
            warnings.simplefilter("ignore")
            freq = pd.infer_freq(pd.DatetimeIndex(timestamps))
    except (TypeError, ValueError):
        return None
    return getattr(freq, "freqstr", freq)


def same_freq(a: str | None, b: str | None) -> bool:
    """True when the pandas frequencies ``a`` and ``b`` are one step (``"h"``, ``"60min"`` and ``"1h"``
    are); ``None`` (irregular or unknown) equals only ``None``."""
    if a is None or b is None:
        return a is b
    try:
        return pd.tseries.frequencies.to_offset(a) == pd.tseries.frequencies.to_offset(b)
    except ValueError:
        return a == b


def _parse_times(raw: pd.Series, path: str, column: str, row_offset: int = 2) -> np.ndarray:
    """Parse a column of timestamps; the first bad cell is reported with its file line."""
    parsed = pd.to_datetime(raw, errors="coerce", format="mixed")
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{path}: column {column!r}, row {i + row_offset}: unparsable timestamp {raw.iloc[i]!r}")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.to_numpy(dtype="datetime64[ns]")


def _check_duplicates(times: np.ndarray, path: str, column: str, rows: np.ndarray) -> None:
    order = np.argsort(times, kind="stable")
    st = times[order]
    dup = np.nonzero(st[1:] == st[:-1])[0]
    if len(dup):
        a, b = sorted((int(rows[order[dup[0]]]), int(rows[order[dup[0] + 1]])))
        raise DataError(
            f"{path}: column {column!r}, row {b}: duplicate timestamp {pd.Timestamp(st[dup[0]])} (also in row {a})"
        )


def _parse_numeric(raw: pd.Series, path: str, column: str, rows: np.ndarray) -> np.ndarray:
    """Numbers with empty / NaN cells as missing; any other non-number is an error."""
    s = raw.astype("string").str.strip() if raw.dtype == object or str(raw.dtype).startswith("str") else raw
    num = pd.to_numeric(s, errors="coerce")
    missing_text = (
        s.isna() if not hasattr(s, "str") else (s.isna() | s.str.lower().isin(["", "nan", "na", "null", "none"]))
    )
    bad = (num.isna() & ~missing_text).to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{path}: column {column!r}, row {int(rows[i])}: non-numeric value {raw.iloc[i]!r}")
    out = num.to_numpy(dtype=np.float64, na_value=np.nan)
    inf = np.isinf(out)
    if inf.any():
        i = int(np.argmax(inf))
        raise DataError(f"{path}: column {column!r}, row {int(rows[i])}: infinite value {raw.iloc[i]!r}")
    return out


def _finish(times: np.ndarray, values: np.ndarray, names: list[str], path: str, freq: str | None) -> SeriesTable:
    order = np.argsort(times, kind="stable")
    times, values = times[order], values[order]
    inferred = infer_freq(times)
    return SeriesTable(times, values, names, path, freq or inferred)


def _numeric_columns(df: pd.DataFrame, tcol: str, path: str) -> list[str]:
    """The value columns of a wide CSV read without ``columns``: every column but the timestamps, less
    the text columns (no cell a number, such as a site or an item name), which a note names."""
    names, text = [], []
    for c in df.columns:
        if c == tcol:
            continue
        cells = df[c].str.strip()
        cells = cells[~cells.str.lower().isin(["", "nan", "na", "null", "none"])]
        (text if len(cells) and pd.to_numeric(cells, errors="coerce").isna().all() else names).append(c)
    if text:
        from difflab.core.progress import note

        note(f"{path}: text column(s) {', '.join(map(repr, text))} left out of the series (--columns picks the series)")
    if not names:
        raise DataError(f"{path}: no numeric column besides the timestamps {tcol!r}; columns are {list(df.columns)}")
    return names


# ---------------------------------------------------------------------------------------------------- readers
def read_wide_csv(
    path: str | Path, *, timestamp_column: str | None = None, columns: list[str] | None = None, freq: str | None = None
) -> SeriesTable:
    """A wide CSV: one timestamp column and one numeric column per series (ETT style)."""
    path = str(path)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    if df.shape[1] < 2:
        raise DataError(
            f"{path}: a wide CSV needs a timestamp column and at least one value column, got {list(df.columns)}"
        )
    tcol = timestamp_column or next((c for c in df.columns if c.strip().lower() in _TIME_NAMES), df.columns[0])
    if tcol not in df.columns:
        raise DataError(f"{path}: no timestamp column {tcol!r}; columns are {list(df.columns)}")
    rows = np.arange(len(df)) + 2
    times = _parse_times(df[tcol], path, tcol)
    _check_duplicates(times, path, tcol, rows)
    names = columns or _numeric_columns(df, tcol, path)
    for c in names:
        if c not in df.columns:
            raise DataError(f"{path}: no column {c!r}; columns are {list(df.columns)}")
    values = np.stack([_parse_numeric(df[c], path, c, rows) for c in names], axis=1)
    return _finish(times, values, list(names), path, freq)


def read_long_csv(
    path: str | Path,
    *,
    item_column: str = "item_id",
    timestamp_column: str = "timestamp",
    value_column: str = "value",
    freq: str | None = None,
) -> SeriesTable:
    """A long CSV ``item_id, timestamp, value``; items aligned on the union of timestamps (holes masked)."""
    path = str(path)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for c in (item_column, timestamp_column, value_column):
        if c not in df.columns:
            raise DataError(f"{path}: a long CSV needs column {c!r}; columns are {list(df.columns)}")
    rows = np.arange(len(df)) + 2
    times = _parse_times(df[timestamp_column], path, timestamp_column)
    vals = _parse_numeric(df[value_column], path, value_column, rows)
    items = df[item_column].to_numpy()
    names = list(dict.fromkeys(items.tolist()))
    for name in names:
        sel = items == name
        _check_duplicates(times[sel], path, f"{timestamp_column} (item {name})", rows[sel])
    all_times = np.unique(times)
    values = np.full((len(all_times), len(names)), np.nan)
    col = {n: j for j, n in enumerate(names)}
    values[np.searchsorted(all_times, times), [col[i] for i in items]] = vals
    return _finish(all_times, values, [str(n) for n in names], path, freq)


def read_jsonl(path: str | Path, *, freq: str | None = None) -> SeriesTable:
    """GluonTS JSON lines ``{"start", "target"[, "item_id", "freq"]}``; items aligned on their timestamps."""
    path = str(path)
    series: list[tuple[str, np.ndarray, np.ndarray]] = []
    with open(path) as fh:
        for lineno, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}: row {lineno}: not valid JSON ({err.msg})") from None
            for key in ("start", "target"):
                if key not in obj:
                    raise DataError(f"{path}: row {lineno}: missing field {key!r}")
            f = freq or obj.get("freq")
            if f is None:
                raise DataError(f"{path}: row {lineno}: field 'start' needs a frequency; pass freq=... (e.g. 'h')")
            try:
                start = pd.Timestamp(obj["start"])
            except (ValueError, TypeError):
                raise DataError(
                    f"{path}: column 'start', row {lineno}: unparsable timestamp {obj['start']!r}"
                ) from None
            target = obj["target"]
            if target and isinstance(target[0], list):
                raise DataError(f"{path}: row {lineno}: multivariate 'target' is not supported; one series per line")
            vals = np.empty(len(target))
            for k, v in enumerate(target):
                if v is None or (isinstance(v, str) and v.lower() in ("nan", "")):
                    vals[k] = np.nan
                elif isinstance(v, (int, float)) and not isinstance(v, bool):
                    vals[k] = float(v)
                else:
                    raise DataError(f"{path}: column 'target', row {lineno}: non-numeric value {v!r} at position {k}")
            times = pd.date_range(start.tz_localize(None) if start.tz else start, periods=len(vals), freq=f)
            series.append((str(obj.get("item_id", len(series))), times.to_numpy("datetime64[ns]"), vals))
            freq = f
    if not series:
        raise DataError(f"{path}: no series in the file")
    all_times = np.unique(np.concatenate([s[1] for s in series]))
    values = np.full((len(all_times), len(series)), np.nan)
    for j, (_, t, v) in enumerate(series):
        values[np.searchsorted(all_times, t), j] = v
    return _finish(all_times, values, [s[0] for s in series], path, freq)


def read_table(
    path: str | Path,
    *,
    format: FileFormat = "auto",
    columns: list[str] | None = None,
    timestamp_column: str | None = None,
    freq: str | None = None,
) -> SeriesTable:
    """Read ``path`` in any supported format (``auto``: ``.json``/``.jsonl`` files are JSON lines; a CSV
    with ``item_id`` and ``value`` columns is long; any other CSV is wide)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{path}: no such file")
    if format == "auto":
        if p.suffix.lower() in (".json", ".jsonl", ".ndjson"):
            format = "jsonl"
        else:
            header = pd.read_csv(p, nrows=0).columns
            format = "long" if {"item_id", "value"} <= set(header) else "wide"
    if format == "wide":
        table = read_wide_csv(p, timestamp_column=timestamp_column, columns=columns, freq=freq)
    elif format == "long":
        table = read_long_csv(p, timestamp_column=timestamp_column or "timestamp", freq=freq)
    elif format == "jsonl":
        table = read_jsonl(p, freq=freq)
    else:
        raise ValueError(f"format must be auto, wide, long or jsonl, got {format!r}")
    if columns is not None and format != "wide":
        table = table.select(columns)
    return table


__all__ = [
    "DataError",
    "SeriesTable",
    "infer_freq",
    "same_freq",
    "read_wide_csv",
    "read_long_csv",
    "read_jsonl",
    "read_table",
]
