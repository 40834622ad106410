"""The shipped default forecaster (``pretrained/forecaster.ckpt``, written by
``python scripts/pretrain.py timeseries``): the verbs use it without ``--ckpt``, it forecasts files of
any number of series one series at a time, and it beats seasonal naive on held-out taylor windows.

Measured margin (see the README's *Pretrained default*): on the 14 taylor test windows the default's
CRPS is 0.725 x seasonal naive's (0.0467 against 0.0643, 24 paths) after 3,455 training steps (30 min
on a 2-core CPU). With the test's 16 paths the ratio was 0.63, 0.61, 0.75 and 0.61 for sampling seeds
0-3; the test asserts < 0.9 with seed 0.
"""

import numpy as np
import pandas as pd
import pytest
import torch

from difflab.core.lightning.pretrained import pretrained_info, recommended_sampling, shipped_path
from difflab.timeseries.cli import main

SHIPPED = shipped_path("timeseries", "forecaster")
needs_default = pytest.mark.skipif(
    not SHIPPED.is_file(), reason="no shipped default: python scripts/pretrain.py timeseries"
)


def _csv(path, n_series: int = 3, rows: int = 150, freq: str = "h"):
    rng = np.random.default_rng(0)
    t = np.arange(rows)
    data = 10 + 3 * np.sin(2 * np.pi * t[:, None] / 24 + np.arange(n_series)) + rng.normal(0, 0.2, (rows, n_series))
    frame = pd.DataFrame(data * np.arange(1, n_series + 1), columns=[f"load_{j}" for j in range(n_series)])
    frame.insert(0, "date", pd.date_range("2024-03-01", periods=rows, freq=freq))
    frame.to_csv(path, index=False)
    return frame


@needs_default
def test_forecast_without_ckpt_uses_the_default_on_any_series(tmp_path, capsys):
    frame = _csv(tmp_path / "mine.csv", n_series=3, rows=150, freq="15min")  # another frequency and width
    args = ["forecast", str(tmp_path / "mine.csv"), str(tmp_path / "out"), "--samples", "8", "--steps", "10"]
    assert main([*args, "--horizon", "12", "--context", "72"]) == 0
    out = pd.read_csv(tmp_path / "out/forecast.csv")
    assert len(out) == 12 * 3 and set(out["series"]) == {"load_0", "load_1", "load_2"}
    q = out[[c for c in out.columns if c.startswith("q")]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()
    for j in range(3):  # each series forecast on its own scale
        level = frame[f"load_{j}"].iloc[-72:].mean()
        assert abs(out[out.series == f"load_{j}"]["mean"].mean() - level) < 0.5 * level
    assert (tmp_path / "out/fan_chart.png").is_file()
    frame.loc[140:144, "load_1"] = np.nan  # a hole in the context: masked, said, not filled
    frame.to_csv(tmp_path / "holes.csv", index=False)
    capsys.readouterr()
    args = ["forecast", str(tmp_path / "holes.csv"), str(tmp_path / "out2"), "--samples", "8", "--steps", "10"]
    assert main([*args, "--horizon", "12", "--context", "72"]) == 0
    said = capsys.readouterr().out
    assert "holes.csv: missing values in the context, masked (not filled): load_1 (5 of 72)" in said
    assert pd.read_csv(tmp_path / "out2/forecast.csv")["mean"].notna().all()


def test_help_says_the_default(capsys):
    with pytest.raises(SystemExit):
        main(["forecast", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "default: the shipped pretrained forecaster" in text and "recommended" in text


def test_series_batch_is_one_window_per_series():
    import tempfile
    from pathlib import Path

    from difflab.timeseries.data.table import read_table
    from difflab.timeseries.evaluate import future_batch
    from difflab.timeseries.inference import _series_batch

    with tempfile.TemporaryDirectory() as tmp:
        _csv(Path(tmp) / "d.csv", n_series=3, rows=100)
        table = read_table(str(Path(tmp) / "d.csv"))
    batch, _ = future_batch(table, 48, 12)
    part = _series_batch(batch, [0, 2])
    assert part["x0"].shape == (2, 60, 1) and part["times"].shape == (2, 60) and part["scale"].shape == (2, 1, 1)
    one, _ = future_batch(table.select(["load_2"]), 48, 12)
    for key in ("x0", "observed", "cond_mask", "target_mask", "loc", "scale"):
        torch.testing.assert_close(part[key][1:], one[key])


@needs_default
def test_shipped_default_records_its_provenance_and_sampling():
    info = pretrained_info(SHIPPED)
    assert info["command"].startswith("python scripts/pretrain.py timeseries")
    assert set(recommended_sampling(SHIPPED)) == {"sampler", "steps"}
    for dataset in ("taylor", "tmy3", "sf_temps"):
        rows = info["evaluation"]["test"][dataset]
        assert {"pretrained", "seasonal_naive", "naive", "ets", "sarima"} <= set(rows)
    assert SHIPPED.stat().st_size < 4 * 2**20


@needs_default
def test_shipped_default_beats_seasonal_naive_on_held_out_taylor():
    from difflab.timeseries.inference import load_checkpoint
    from difflab.timeseries.pretrain import series_windows

    model, _ = load_checkpoint(SHIPPED)
    ((name, ds),) = series_windows("taylor", "test")
    from difflab.timeseries.evaluate import baseline_samples, horizon_truth, model_samples
    from difflab.timeseries.metrics import metric_table

    y, m = horizon_truth(ds)
    naive = metric_table(baseline_samples(ds, "seasonal_naive", 48), y, m)["crps"]
    paths = model_samples(model, ds, num_samples=16, seed=0, **recommended_sampling(SHIPPED))
    crps = metric_table(paths, y, m)["crps"]
    assert crps < RATIO * naive, (crps, naive)


RATIO = 0.9


def test_sarima_and_last_value_baselines():
    from difflab.timeseries.models.baselines import naive_forecast, sarima_forecast

    rng = np.random.default_rng(1)
    n, m, h = 96, 24, 24
    e = rng.normal(0, 1, n + h)
    w = np.zeros(n + h)  # seasonal difference is an AR(1): the model's own class
    for i in range(1, n + h):
        w[i] = 0.6 * w[i - 1] + e[i]
    y = 5 * np.sin(2 * np.pi * np.arange(n + h) / m) + 100
    for i in range(m, n + h):
        y[i] = y[i - m] + 0.3 * w[i]
    paths = sarima_forecast(y[:n, None], h, m, num_samples=200, seed=0)
    assert paths.shape == (200, h, 1) and np.isfinite(paths).all()
    lo, hi = np.quantile(paths[:, :, 0], [0.05, 0.95], axis=0)
    assert ((y[n:] >= lo) & (y[n:] <= hi)).mean() > 0.6  # one window: a loose check of the interval
    assert np.abs(np.median(paths[:, :, 0], 0) - y[n:]).mean() < np.abs(y[n - m : n] - y[n:]).mean() * 1.5
    ctx = np.array([[1.0, 5.0], [2.0, np.nan]])
    np.testing.assert_array_equal(naive_forecast(ctx, 3)[0], [[2.0, 5.0]] * 3)
