"""A user's own photographs: a DIV2K-like folder of HR images of any sizes at another scale trains
the smoke config unchanged (the data decides the factor and the crops), ``upscale`` then writes the
right size and colour mode and refuses another factor, and the README's commands run as written."""

from pathlib import Path

import numpy as np
from PIL import Image

from difflab.core.testing import run_readme_commands, user_error_line
from difflab.vision.cli import main

README = Path(__file__).resolve().parents[2] / "vision" / "README.md"
SCALE = 3  # the smoke configs are x4 with 32 px crops


def write_own_data(root: Path) -> Path:
    """``root/DIV2K_{train,valid}_HR/*.png`` of several sizes, some smaller than the smoke crop."""
    rng = np.random.default_rng(0)
    for folder, shapes in (
        ("DIV2K_train_HR", [(40, 52), (27, 45), (60, 33)]),
        ("DIV2K_valid_HR", [(30, 45), (36, 36)]),
    ):
        (root / folder).mkdir(parents=True)
        for i, (h, w) in enumerate(shapes):
            y, x = np.mgrid[:h, :w]
            img = np.stack([np.sin(x / 3 + i), np.cos(y / 4), np.sin((x + y) / 5)], -1) * 0.4 + 0.5
            img = (img + 0.05 * rng.standard_normal((h, w, 3))).clip(0, 1)
            Image.fromarray((img * 255).astype(np.uint8)).save(root / folder / f"{i + 1:04d}.png")
    return root


def data_args(root: str = "my") -> list[str]:
    return [
        "--data.init_args.source",
        "hr_folder",
        "--data.init_args.train_gt",
        f"{root}/DIV2K_train_HR",
        "--data.init_args.val_gt",
        f"{root}/DIV2K_valid_HR",
    ]


def one_line_error(capsys, argv: list[str]) -> str:
    return user_error_line(main, capsys, argv, keep=lambda line: line.startswith("difflab-vision"))


def test_smoke_config_trains_on_images_of_another_scale_and_size_then_upscales(tmp_path, monkeypatch, capsys):
    import torch

    from difflab.core.lightning.checkpoint import find_last_checkpoint

    monkeypatch.chdir(tmp_path)
    write_own_data(tmp_path / "my")
    argv = ["fit", "--config", "smoke_resshift", *data_args(), "--data.init_args.scale", str(SCALE)]
    assert main([*argv, "--trainer.enable_progress_bar", "false"]) == 0
    out = capsys.readouterr().out
    assert "--data.init_args.patch_size 32: my/DIV2K_train_HR/0002.png is 27x45; using 27x27 crops" in out
    run = tmp_path / "outputs/vision/smoke_resshift"
    assert torch.load(find_last_checkpoint(run), weights_only=False)["hyper_parameters"]["scale"] == SCALE
    Image.fromarray((np.random.default_rng(1).random((13, 17, 3)) * 255).astype(np.uint8)).save("photo.png")
    Image.fromarray((np.random.default_rng(2).random((9, 11)) * 255).astype(np.uint8), "L").save("grey.png")
    for name in ("photo", "grey"):
        args = ["upscale", f"{name}.png", f"{name}_up.png", "--ckpt", str(run), "--steps", "1", "--tile", "8"]
        assert main([*args, "--overlap", "2"]) == 0
    assert Image.open("photo_up.png").size == (17 * SCALE, 13 * SCALE) and Image.open("photo_up.png").mode == "RGB"
    assert Image.open("grey_up.png").size == (11 * SCALE, 9 * SCALE) and Image.open("grey_up.png").mode == "L"
    err = one_line_error(capsys, ["upscale", "photo.png", "x4.png", "--ckpt", str(run), "--scale", "4"])
    assert "--scale 4" in err and f"x{SCALE}" in err and f"--scale {SCALE}" in err
    assert not Path("x4.png").exists()
    err = one_line_error(capsys, ["validate", "--config", "smoke_resshift", *data_args(), "--ckpt_path", "last"])
    assert "--data.init_args.scale 4" in err and f"x{SCALE}" in err  # data of another factor than the model's


def test_a_paired_folder_of_another_factor_names_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    write_own_data(tmp_path / "my")
    for split in ("train", "valid"):
        (tmp_path / f"lq_{split}").mkdir()
        for p in sorted((tmp_path / "my" / f"DIV2K_{split}_HR").iterdir()):
            im = Image.open(p)
            im.resize((im.width // 2, im.height // 2), Image.BICUBIC).save(tmp_path / f"lq_{split}" / p.name)
    paired = ["--data.init_args.source", "paired", "--data.init_args.train_gt", "my/DIV2K_train_HR"]
    paired += ["--data.init_args.train_lq", "lq_train", "--data.init_args.val_gt", "my/DIV2K_valid_HR"]
    paired += ["--data.init_args.val_lq", "lq_valid", "--trainer.enable_progress_bar", "false"]
    err = one_line_error(capsys, ["fit", "--config", "smoke_resshift", *paired])
    assert "DIV2K_" in err and "--data.init_args.scale 2" in err


def test_readme_own_data_commands(tmp_path, monkeypatch):
    """The README's commands for one's own images, as written, on the smoke recipe (two steps)."""
    monkeypatch.chdir(tmp_path)
    write_own_data(tmp_path / "my")
    Image.fromarray((np.random.default_rng(1).random((13, 17, 3)) * 255).astype(np.uint8)).save("photo.png")
    smoke = {"resshift4_photos_x2": "smoke_resshift"}
    outputs = {"outputs/vision/resshift4_photos_x2": "outputs/vision/smoke_resshift"}
    run_readme_commands(README, main, "difflab-vision", smoke, outputs)
    assert Image.open(tmp_path / "photo_x2.png").size == (17 * 4, 13 * 4)  # the smoke config is x4
