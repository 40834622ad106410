"""Command line: forecast and online verbs (every config's fast_dev_run, the checkpoint round trip and
help are in tests/architecture/test_contracts.py)."""

import pytest

from difflab.core.cli import builtin_configs
from difflab.timeseries.cli import main

CONFIGS = builtin_configs("timeseries")


def test_configs_ship():
    assert {
        "spd_gp_taylor",
        "spd_ou_taylor",
        "cspd_gp_taylor",
        "csdi_taylor",
        "falda_taylor",
        "spd_gp_tmy3",
        "smoke_spd",
        "smoke_csdi",
        "smoke_falda",
        "smoke_cspd",
    } <= set(CONFIGS)


def test_fit_then_forecast_and_online(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--config", "smoke_spd", "--trainer.enable_progress_bar", "false"]) == 0
    ckpt = tmp_path / "outputs/timeseries/smoke_spd/lightning_logs/version_0/checkpoints/last.ckpt"
    assert ckpt.is_file()
    from difflab.timeseries.data import load_builtin

    load_builtin("taylor").to_frame().iloc[:500].to_csv(tmp_path / "d.csv")
    assert (
        main(["forecast", "d.csv", "out", "--ckpt", str(ckpt), "--horizon", "12", "--samples", "4", "--steps", "2"])
        == 0
    )
    text = (tmp_path / "out/forecast.csv").read_text().splitlines()
    assert text[0].startswith("timestamp,series,mean,q0.05") and len(text) == 13
    assert (tmp_path / "out/fan_chart.png").stat().st_size > 1000
    assert main(["online", "--ckpt", str(ckpt), "--finetune_steps", "1", "--samples", "2", "--max_forecasts", "2"]) == 0
    out = capsys.readouterr().out
    assert "artifact: out/forecast.csv" in out and "finetune x1" in out
    argv = ["forecast", "d.csv", "out", "--ckpt", str(ckpt), "--horizon", "12", "--samples", "4", "--steps", "2"]
    with pytest.raises(SystemExit):
        main(argv)  # the folder holds the first forecast
    assert "--overwrite" in capsys.readouterr().err
    frame = load_builtin("taylor").to_frame().iloc[:500]
    frame.iloc[-200:, 0] = float("nan")
    frame.to_csv(tmp_path / "gap.csv")
    with pytest.raises(SystemExit) as stop:
        main(["forecast", "gap.csv", "out2", *argv[3:]])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and "gap.csv" in err[0] and "no observed value" in err[0], err
    assert not (tmp_path / "out2").exists()


def test_online_rule_uses_only_arrived_truth():
    import numpy as np

    from difflab.timeseries.online import available_windows

    starts = np.arange(100, 200)
    got = available_windows(starts, 24, now=150)
    assert got.max() == 126 and (got + 24 <= 150).all()


def test_a_horizon_the_model_does_not_support_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--config", "smoke_falda", "--trainer.enable_progress_bar", "false"]) == 0
    ckpt = next(tmp_path.rglob("last.ckpt"))
    from difflab.timeseries.data import load_builtin

    load_builtin("taylor").to_frame().iloc[:500].to_csv(tmp_path / "d.csv")
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(["forecast", "d.csv", "out", "--ckpt", str(ckpt), "--horizon", "7", "--samples", "2", "--steps", "2"])
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and "--horizon 7" in err[0] and "prediction_length=" in err[0], err
    assert not (tmp_path / "out").exists()
