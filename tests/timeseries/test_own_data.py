"""A user's own series: the data decides the number, names and order of the series, the frequency
and the window lengths (no model overrides), the README's commands run as written, and data that
does not fit a trained model is a one-line error naming both values and the option."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from difflab.core.testing import run_readme_commands, user_error_line
from difflab.timeseries.cli import main

README = Path(__file__).resolve().parents[2] / "timeseries" / "README.md"
SERIES = ["load", "temp", "wind"]  # the smoke configs' default is one half-hourly series (taylor)


def daily_frame(rows: int = 300, names: list[str] = SERIES, freq: str = "D") -> pd.DataFrame:
    """``rows`` steps of len(names) seasonal series, one column each (ETT's wide layout)."""
    rng = np.random.default_rng(0)
    k = np.arange(rows)
    data = {
        name: 10 * (j + 1) + 3 * np.sin(2 * np.pi * k / 7 + j) + rng.normal(0, 0.3, rows)
        for j, name in enumerate(names)
    }
    index = pd.date_range("2023-01-01", periods=rows, freq=freq, name="date")
    return pd.DataFrame(data, index=index)


def write_wide(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, date_format="%Y-%m-%d %H:%M:%S")
    return path


def write_long(path: Path, frame: pd.DataFrame) -> Path:
    long = frame.reset_index().melt(id_vars="date", var_name="item_id", value_name="value")
    long.rename(columns={"date": "timestamp"})[["item_id", "timestamp", "value"]].to_csv(path, index=False)
    return path


def quiet() -> list[str]:
    return ["--trainer.enable_progress_bar", "false"]


def one_line_error(capsys, argv: list[str]) -> str:
    return user_error_line(main, capsys, argv)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A folder holding ``my.csv`` (three daily series, wide) and the smoke DSPD run fitted on it."""
    root = tmp_path_factory.mktemp("own")
    write_wide(root / "my.csv", daily_frame())
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(root)
        assert main(["fit", "--config", "smoke_spd", "--data.init_args.dataset", "my.csv", *quiet()]) == 0
    return root


def forecast_rows(path: Path) -> pd.DataFrame:
    frame = pd.read_csv(path, parse_dates=["timestamp"])
    assert list(frame.columns[:4]) == ["timestamp", "series", "mean", "q0.05"]
    return frame


def test_smoke_config_learns_the_series_and_frequency_of_the_data(trained, monkeypatch, capsys):
    monkeypatch.chdir(trained)
    from difflab.timeseries.inference import load_checkpoint

    model, _ = load_checkpoint(trained / "outputs/timeseries/smoke_spd")
    assert model.network.num_series == 3 and model.series_names == SERIES and model.frequency == "D"
    assert (model.context_length, model.prediction_length) == (96, 48)
    capsys.readouterr()
    argv = ["forecast", "my.csv", "fc", "--ckpt", "outputs/timeseries/smoke_spd", "--samples", "4", "--steps", "2"]
    assert main(argv) == 0
    assert "forecast my.csv: 2/2 steps" in capsys.readouterr().err  # progress of the sampler
    frame = forecast_rows(trained / "fc/forecast.csv")
    assert len(frame) == 48 * 3 and list(frame["series"][:3]) == SERIES
    days = frame["timestamp"].drop_duplicates()
    assert days.iloc[0] == pd.Timestamp("2023-10-28") and (days.diff().dropna() == pd.Timedelta("1D")).all()
    assert (trained / "fc/fan_chart.png").stat().st_size > 1000


def test_forecast_takes_the_model_series_by_name_in_its_order(trained, monkeypatch):
    monkeypatch.chdir(trained)
    frame = daily_frame()[["wind", "load", "temp"]].assign(extra=1.0)
    write_wide(trained / "shuffled.csv", frame)
    argv = ["forecast", "shuffled.csv", "fc_shuffled", "--ckpt", "outputs/timeseries/smoke_spd", "--samples", "2"]
    assert main([*argv, "--steps", "1"]) == 0
    rows = forecast_rows(trained / "fc_shuffled/forecast.csv")
    assert list(rows["series"][:3]) == SERIES and set(rows["series"]) == set(SERIES)


@pytest.mark.parametrize(
    ("frame", "needles"),
    [
        (
            daily_frame(names=["load", "temp"]),
            ["2 series ['load', 'temp']", "3 series ['load', 'temp', 'wind']", "--columns"],
        ),
        (daily_frame(freq="h"), ["frequency is h", "trained on D data", "--ckpt"]),
    ],
    ids=["other-series", "hourly"],
)
def test_a_series_the_model_was_not_trained_on_is_one_line(trained, frame, needles, monkeypatch, capsys):
    monkeypatch.chdir(trained)
    write_wide(trained / "other.csv", frame)
    err = one_line_error(capsys, ["forecast", "other.csv", "fc_other", "--ckpt", "outputs/timeseries/smoke_spd"])
    assert all(n in err for n in needles), err
    assert not (trained / "fc_other").exists()


def test_test_on_the_config_data_refuses_a_checkpoint_of_other_series(trained, monkeypatch, capsys):
    monkeypatch.chdir(trained)
    err = one_line_error(capsys, ["test", "--config", "smoke_spd", *quiet(), "--ckpt_path", "last"])
    assert "--data.init_args.dataset taylor" in err and "1 series ['demand_MW']" in err, err
    assert "3 series ['load', 'temp', 'wind']" in err and "--data.init_args.columns" in err, err


def test_decomposition_takes_its_window_lengths_from_long_csv_data(tmp_path, monkeypatch, capsys):
    """The long layout, and window lengths given to the data module only: the backbone is built for them."""
    monkeypatch.chdir(tmp_path)
    write_long(tmp_path / "long.csv", daily_frame(rows=200))
    data = ["--data.init_args.dataset", "long.csv", "--data.init_args.context_length", "28"]
    assert main(["fit", "--config", "smoke_falda", *data, "--data.init_args.prediction_length", "14", *quiet()]) == 0
    run = "outputs/timeseries/smoke_falda"
    assert main(["forecast", "long.csv", "fc", "--ckpt", run, "--samples", "2", "--steps", "1"]) == 0
    assert len(forecast_rows(tmp_path / "fc/forecast.csv")) == 14 * 3
    err = one_line_error(capsys, ["test", "--config", "smoke_falda", *data, *quiet(), "--ckpt_path", "last"])
    assert "--data.init_args.prediction_length 48" in err and "prediction_length=14" in err, err


def test_a_file_too_short_for_the_splits_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_wide(tmp_path / "short.csv", daily_frame(rows=96 + 3 * 48 - 1))
    err = one_line_error(capsys, ["fit", "--config", "smoke_spd", "--data.init_args.dataset", "short.csv", *quiet()])
    assert "short.csv: 239 rows" in err and "96 + 3 x 48 = 240" in err and "--data.init_args.context_length" in err


def test_the_smallest_file_holds_a_window_in_every_split(tmp_path):
    from difflab.timeseries.data import ForecastDataModule

    write_wide(tmp_path / "small.csv", daily_frame(rows=96 + 3 * 48))
    dm = ForecastDataModule(str(tmp_path / "small.csv"), context_length=96, prediction_length=48, batch_size=4)
    with pytest.warns(UserWarning, match="1 training windows, fewer than batch_size 4"):
        dm.setup()
    assert dm.batch_size == 1
    assert (len(dm.train_set), len(dm.val_set), len(dm.test_set)) == (1, 1, 1)
    assert (dm.num_series, dm.series_names, dm.frequency) == (3, SERIES, "D")


def test_readme_own_data_commands(tmp_path, monkeypatch):
    """The README's commands for one's own CSV, as written, on the smoke recipe (two steps) and four
    sample paths."""
    monkeypatch.chdir(tmp_path)
    write_wide(tmp_path / "my.csv", daily_frame())
    run_readme_commands(README, main, "difflab-timeseries", {"100": "4"}, {"spd_gp_taylor": "smoke_spd"})
    written = list(tmp_path.glob("*/forecast.csv"))
    assert len(written) == 1 and len(forecast_rows(written[0])) == 48 * 3


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--freq", "2H"], "'2H' is not a pandas frequency"),
        (["--sampler", "foo"], "--sampler"),
        (["--columns"], "--columns"),
    ],
)
def test_bad_forecast_arguments_are_one_line_before_anything_loads(extra, needle, tmp_path, capsys):
    write_wide(tmp_path / "my.csv", daily_frame(rows=10))
    (tmp_path / "empty.ckpt").write_bytes(b"")
    err = one_line_error(
        capsys,
        ["forecast", str(tmp_path / "my.csv"), str(tmp_path / "fc"), "--ckpt", str(tmp_path / "empty.ckpt"), *extra],
    )
    assert needle in err and not (tmp_path / "fc").exists(), err
