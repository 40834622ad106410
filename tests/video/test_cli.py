"""Command line: resume, make-dataset, detect (every config's fast_dev_run, the checkpoint round trip and
help are in tests/architecture/test_contracts.py)."""

import json

import numpy as np
import pytest

from difflab.core.cli import builtin_configs
from difflab.video.cli import main

CONFIGS = builtin_configs("video")


def test_configs_ship():
    assert {"difftad_mocap", "detr_mocap", "difftad_thumos14", "smoke_difftad", "smoke_detr"} <= set(CONFIGS)


def test_fit_resume_then_detect(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--config", "smoke_detr", "--trainer.enable_progress_bar", "false"]) == 0
    ckpt = tmp_path / "outputs/video/smoke_detr/lightning_logs/version_0/checkpoints/last.ckpt"
    assert ckpt.is_file()
    assert (
        main(
            [
                "fit",
                "--config",
                "smoke_detr",
                "--trainer.enable_progress_bar",
                "false",
                "--trainer.max_steps",
                "3",
                "--ckpt_path",
                "last",
            ]
        )
        == 0
    )
    import torch

    from difflab.core.lightning.checkpoint import find_last_checkpoint

    resumed = find_last_checkpoint(tmp_path / "outputs/video/smoke_detr")
    assert resumed != ckpt and torch.load(resumed, map_location="cpu", weights_only=False)["global_step"] == 3
    assert main(["fit", "--config", "smoke_difftad", "--trainer.enable_progress_bar", "false"]) == 0
    feats = tmp_path / "outputs/data/video/mocap_smoke/features"
    for name in ("smoke_detr", "smoke_difftad"):
        out = tmp_path / f"{name}.json"
        ck = tmp_path / f"outputs/video/{name}/lightning_logs/version_0/checkpoints/last.ckpt"
        assert main(["detect", str(feats), "--ckpt", str(ck), "--steps", "2", "--out", str(out)]) == 0
        res = json.loads(out.read_text())
        assert set(res) == {"version", "results", "external_data"} and len(res["results"]) == 16
        det = next(iter(res["results"].values()))[0]
        assert {"label", "score", "segment"} <= set(det) and det["segment"][0] < det["segment"][1]
    assert "artifact: " in capsys.readouterr().out


def test_make_dataset_command(tmp_path, capsys):
    assert (
        main(
            [
                "make-dataset",
                str(tmp_path / "d"),
                "--n_train",
                "2",
                "--n_val",
                "1",
                "--n_test",
                "1",
                "--actions",
                "kick",
                "punch",
            ]
        )
        == 0
    )
    data = json.loads((tmp_path / "d/annotations.json").read_text())
    assert len(data["database"]) == 4
    assert capsys.readouterr().out.count("artifact: ") == 2


def test_detect_rejects_wrong_features(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["fit", "--config", "smoke_detr", "--trainer.enable_progress_bar", "false"]) == 0
    np.save(tmp_path / "bad.npy", np.zeros((50, 7), np.float32))
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(["detect", str(tmp_path / "bad.npy"), "--ckpt", "outputs/video/smoke_detr"])
    assert stop.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'bad'" in err[0] and "7 channels" in err[0]
    assert not (tmp_path / "detections.json").exists()


def test_outputs_are_not_replaced_without_overwrite(tmp_path, capsys):
    out = tmp_path / "d"
    args = ["make-dataset", str(out), "--n_train", "1", "--n_val", "1", "--n_test", "1", "--actions", "kick"]
    assert main(args) == 0
    before = (out / "annotations.json").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main([*args, "--seed", "3"])
    assert stop.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert (out / "annotations.json").read_text() == before
    assert main([*args, "--seed", "3", "--overwrite"]) == 0


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["make-dataset", "OUT", "--actions", "walkabout"], "--actions"),
        (["make-dataset", "OUT", "--num_actions", "3", "2"], "--num_actions"),
        (["make-dataset", "OUT", "--n_test", "-1"], "--n_test"),
        (["detect", "OUT", "--ckpt", "x", "--fps", "0"], "--fps"),
    ],
)
def test_bad_arguments_are_one_line(argv, needle, tmp_path, capsys):
    argv = [str(tmp_path / "o") if a == "OUT" else a for a in argv]
    (tmp_path / "o").mkdir()
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(err) == 1 and needle in err[0], err
