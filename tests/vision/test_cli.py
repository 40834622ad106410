"""Checkpoints reload through ``upscale``; resume from ``last.ckpt`` (every config's fast_dev_run, the
checkpoint round trip and help are in tests/architecture/test_contracts.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from difflab.core.cli import builtin_configs
from difflab.core.lightning.checkpoint import find_last_checkpoint
from difflab.vision.cli import main

CONFIGS = builtin_configs("vision")


def _png(path: Path, shape, seed):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.random.default_rng(seed).random(shape) * 255).astype(np.uint8)).save(path)


@pytest.fixture(scope="module")
def sr3_ckpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("sr3")
    import os

    cwd = os.getcwd()
    os.chdir(root)  # the smoke config writes under outputs/ relative to the working folder
    try:
        main(["fit", "-c", "smoke_sr3", "--trainer.enable_progress_bar=false"])
    finally:
        os.chdir(cwd)
    ckpt = Path(root) / "outputs/vision/smoke_sr3/lightning_logs/version_0/checkpoints/last.ckpt"
    assert ckpt.is_file()
    return ckpt


def test_configs_ship():
    assert {
        "resshift15_photos",
        "resshift4_photos",
        "sr3_photos",
        "samdiffsr_photos",
        "invsr_photos",
        "smoke_resshift",
        "smoke_sr3",
    } <= set(CONFIGS)


def test_upscale_from_checkpoint(tmp_path, sr3_ckpt):
    from PIL import Image

    _png(tmp_path / "in" / "a.png", (20, 28, 3), 0)
    Image.fromarray((np.random.default_rng(1).random((12, 12, 4)) * 255).astype(np.uint8), "RGBA").save(
        tmp_path / "in" / "b.png"
    )
    assert (
        main(
            [
                "upscale",
                str(tmp_path / "in"),
                str(tmp_path / "out"),
                "--ckpt",
                str(sr3_ckpt),
                "--scale",
                "4",
                "--steps",
                "2",
                "--tile",
                "8",
                "--overlap",
                "2",
            ]
        )
        == 0
    )
    a, b = Image.open(tmp_path / "out" / "a.png"), Image.open(tmp_path / "out" / "b.png")
    assert a.size == (112, 80) and a.mode == "RGB"
    assert b.size == (48, 48) and b.mode == "RGBA"
    err = _error(["upscale", str(tmp_path / "in"), str(tmp_path / "o2"), "--ckpt", str(sr3_ckpt), "--scale", "2"])
    assert "--scale 2" in err and "x4" in err  # both factors named; nothing written
    assert not (tmp_path / "o2").exists()
    err = _error(["upscale", str(tmp_path / "in"), str(tmp_path / "out"), "--ckpt", str(sr3_ckpt)])
    assert "a.png" in err and "--overwrite" in err  # an existing output is not replaced


def test_upscale_folder_goes_on_past_bad_files(tmp_path, sr3_ckpt, capsys):
    """A file that is not an image (header) and a truncated PNG (pixels) are skipped, the good image is
    written, and the run ends with one line naming both failures and exit status 1; a file of another
    suffix is left alone, and said so."""
    _png(tmp_path / "in" / "a.png", (10, 12, 3), 0)
    (tmp_path / "in" / "notes.txt").write_text("not for upscaling")
    _png(tmp_path / "in" / "c.png", (40, 40, 3), 1)
    data = (tmp_path / "in" / "c.png").read_bytes()
    (tmp_path / "in" / "c.png").write_bytes(data[: len(data) // 2])  # header intact, pixel data cut
    (tmp_path / "in" / "b.png").write_bytes(b"not an image")
    argv = ["upscale", str(tmp_path / "in"), str(tmp_path / "out"), "--ckpt", str(sr3_ckpt), "--steps", "1"]
    assert main([*argv, "--tile", "8", "--overlap", "2"]) == 1
    assert (tmp_path / "out" / "a.png").is_file()
    assert not (tmp_path / "out" / "b.png").exists() and not (tmp_path / "out" / "c.png").exists()
    out = capsys.readouterr()
    assert "1 file(s) of another suffix left alone (notes.txt)" in out.out
    last = out.err.strip().splitlines()[-1]
    assert last.startswith("difflab-vision upscale: 1 of 3 images written; failed:")
    assert "b.png" in last and "c.png" in last


def _error(argv: list[str]) -> str:
    """The one-line error of ``main(argv)`` (exit status 2)."""
    import contextlib
    import io

    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as stop:
        main(argv)
    lines = stderr.getvalue().strip().splitlines()
    assert stop.value.code == 2 and len(lines) == 1 and lines[0].startswith("difflab-vision"), lines
    return lines[0]


def test_upscale_checks_arguments_and_images_before_loading(tmp_path):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(b"")  # never read: the argument and input errors come first
    _png(tmp_path / "in" / "a.png", (8, 8, 3), 0)
    base = ["upscale", str(tmp_path / "in"), str(tmp_path / "out"), "--ckpt", str(ckpt)]
    assert "--overlap" in _error([*base, "--tile", "8", "--overlap", "8"])
    assert "--overlap" in _error([*base, "--overlap", "-1"])
    assert "--tile_batch" in _error([*base, "--tile_batch", "0"])
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"not an image")
    one = ["upscale", str(tmp_path / "bad" / "broken.png"), str(tmp_path / "o.png"), "--ckpt", str(ckpt)]
    assert "broken.png" in _error(one)  # one input that does not read: an error before loading
    none = ["upscale", str(tmp_path / "bad"), str(tmp_path / "o"), "--ckpt", str(ckpt)]
    assert "none of its 1 images" in _error(none)
    (tmp_path / "empty").mkdir()
    assert "no image files" in _error(["upscale", str(tmp_path / "empty"), str(tmp_path / "o"), "--ckpt", str(ckpt)])
    assert not (tmp_path / "out").exists() and not (tmp_path / "o").exists()


def test_fit_resumes_from_last_checkpoint(tmp_path, monkeypatch):
    """A run stopped after 2 steps continues from ``last.ckpt`` (weights, optimiser and step restored)."""
    import torch

    monkeypatch.chdir(tmp_path)
    assert main(["fit", "-c", "smoke_resshift", "--trainer.enable_progress_bar=false"]) == 0
    ckpt = (
        tmp_path
        / "outputs"
        / "vision"
        / "smoke_resshift"
        / "lightning_logs"
        / "version_0"
        / "checkpoints"
        / "last.ckpt"
    )
    first = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert first["global_step"] == 2
    args = ["fit", "-c", "smoke_resshift", "--trainer.enable_progress_bar=false", "--trainer.max_steps=4"]
    assert main([*args, "--ckpt_path=last"]) == 0
    resumed = torch.load(find_last_checkpoint(tmp_path / "outputs/vision/smoke_resshift"), weights_only=False)
    assert resumed["global_step"] == 4
    assert resumed["optimizer_states"][0]["state"][0]["step"] == 4  # Adam's moments carried over, not restarted


def test_smoke_config_on_x2_data_then_upscale(tmp_path, monkeypatch):
    """The data decides the factor: the smoke config (x4 model) fitted on x2 data upscales by 2."""
    from PIL import Image

    monkeypatch.chdir(tmp_path)
    assert main(["fit", "-c", "smoke_sr3", "--data.init_args.scale", "2", "--trainer.enable_progress_bar=false"]) == 0
    ckpt = tmp_path / "outputs/vision/smoke_sr3"
    _png(tmp_path / "a.png", (10, 12, 3), 0)
    assert (
        main(["upscale", "a.png", "up.png", "--ckpt", str(ckpt), "--steps", "1", "--tile", "8", "--overlap", "2"]) == 0
    )
    assert Image.open(tmp_path / "up.png").size == (24, 20)
    assert "--scale 4" in _error(["upscale", "a.png", "up4.png", "--ckpt", str(ckpt), "--scale", "4"])
