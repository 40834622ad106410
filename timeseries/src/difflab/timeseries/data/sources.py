r"""The offline default series: real data shipped inside installed Python packages (no download).

=============  =========================================================  =====  ======  ==========================
name           series                                                     D      freq    train / val / test split
=============  =========================================================  =====  ======  ==========================
``taylor``     pmdarima ``load_taylor``: half-hourly electricity demand   1      30min   < 2000-08-07 / < 08-14 /
               of England and Wales, Mon 5 June - Sun 27 Aug 2000                        rest (2 weeks)
               (Taylor 2003), 4,032 points, seasonality 48 and 336
``sf_temps``   vega-datasets ``sf-temps``: hourly San Francisco air        1      h       < 2010-10-01 / < 11-01 /
               temperature (F) of 2010, 8,759 points; the one hour                       rest (Nov - Dec)
               skipped by daylight saving is a masked missing value
``tmy3``       pvlib's TMY3 file 723170 (Greensboro, NC): hourly ghi,     8      h       < 2001-10-01 / < 11-01 /
               dni, dhi, temp_air, temp_dew, relative_humidity,                          rest (Nov - Dec)
               pressure, wind_speed; a typical meteorological year
               (months from different years, set to 2001), 8,760 rows
=============  =========================================================  =====  ======  ==========================

A split assigns a window to the period in which its *forecast horizon* starts; its context may
reach back into the previous period (as ETT's validation and test sets start ``seq_len`` rows early).
A missing package fails with the exact ``pip install`` command.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd

from difflab.timeseries.data.table import DataError, SeriesTable


@dataclass(frozen=True)
class Split:
    """Fixed split dates: train is ``< val_start``, validation ``[val_start, test_start)``, test the rest."""

    val_start: str
    test_start: str


SPLITS: dict[str, Split] = {
    "taylor": Split("2000-08-07", "2000-08-14"),
    "sf_temps": Split("2010-10-01", "2010-11-01"),
    "tmy3": Split("2001-10-01", "2001-11-01"),
}
SEASONALITY: dict[str, int] = {"taylor": 48, "sf_temps": 24, "tmy3": 24}
TMY3_COLUMNS = ["ghi", "dni", "dhi", "temp_air", "temp_dew", "relative_humidity", "pressure", "wind_speed"]


def _need(module: str, pip_name: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"the default series needs {pip_name}: pip install {pip_name}") from err


def regularize(table: SeriesTable, freq: str) -> SeriesTable:
    """Put ``table`` on the regular grid of ``freq``; grid points without data become masked (NaN) rows.

    Raises if a timestamp is off the grid (the data would have to be moved, which this never does).
    """
    grid = pd.date_range(table.timestamps[0], table.timestamps[-1], freq=freq).to_numpy("datetime64[ns]")
    pos = np.searchsorted(grid, table.timestamps)
    off = (pos >= len(grid)) | (grid[np.minimum(pos, len(grid) - 1)] != table.timestamps)
    if off.any():
        i = int(np.argmax(off))
        raise DataError(
            f"{table.source}: row {i + 2}: timestamp {pd.Timestamp(table.timestamps[i])} is not on the {freq} grid"
        )
    values = np.full((len(grid), table.values.shape[1]), np.nan)
    values[pos] = table.values
    return SeriesTable(grid, values, list(table.names), table.source, freq, dict(table.meta))


def load_taylor() -> SeriesTable:
    datasets = _need("pmdarima.datasets", "pmdarima")
    y = np.asarray(datasets.load_taylor(as_series=False), dtype=np.float64)
    times = pd.date_range("2000-06-05 00:00", periods=len(y), freq="30min").to_numpy("datetime64[ns]")
    return SeriesTable(times, y[:, None], ["demand_MW"], "pmdarima:taylor", "30min", {"seasonality": 48})


def load_sf_temps() -> SeriesTable:
    local = _need("vega_datasets", "vega-datasets").local_data
    df = local.sf_temps()
    table = SeriesTable(
        df["date"].to_numpy("datetime64[ns]"),
        df["temp"].to_numpy(np.float64)[:, None],
        ["temp_F"],
        "vega_datasets:sf-temps",
        None,
        {"seasonality": 24},
    )
    return regularize(table, "h")


def load_tmy3() -> SeriesTable:
    pvlib = _need("pvlib", "pvlib")
    path = os.path.join(os.path.dirname(pvlib.__file__), "data", "723170TYA.CSV")
    if not os.path.isfile(path):
        raise DataError(f"{path}: pvlib's TMY3 file is missing (reinstall pvlib: pip install --force-reinstall pvlib)")
    df, _ = pvlib.iotools.read_tmy3(path, map_variables=True, coerce_year=2001)
    times = df.index.tz_localize(None).to_numpy("datetime64[ns]")
    return SeriesTable(
        times, df[TMY3_COLUMNS].to_numpy(np.float64), list(TMY3_COLUMNS), "pvlib:TMY3-723170", "h", {"seasonality": 24}
    )


LOADERS = {"taylor": load_taylor, "sf_temps": load_sf_temps, "tmy3": load_tmy3}


def load_builtin(name: str) -> SeriesTable:
    """One of the default series by name (``taylor``, ``sf_temps``, ``tmy3``)."""
    if name not in LOADERS:
        raise ValueError(f"unknown built-in series {name!r}; expected one of {sorted(LOADERS)} or a file path")
    return LOADERS[name]()


__all__ = [
    "Split",
    "SPLITS",
    "SEASONALITY",
    "TMY3_COLUMNS",
    "regularize",
    "load_builtin",
    "load_taylor",
    "load_sf_temps",
    "load_tmy3",
]
