"""Every shipped config runs a ``fast_dev_run`` through the real command line (shrunk data / network
sizes for the non-smoke configs); checkpoints reload through ``upscale``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from difflab.core.cli import builtin_configs
from difflab.vision.cli import main

CONFIGS = builtin_configs("vision")
SHRINK = [
    "--data.init_args.patch_size=32",
    "--data.init_args.batch_size=2",
    "--data.init_args.eval_batch_size=2",
    "--data.init_args.eval_size=32",
    "--data.init_args.num_workers=0",
    "--model.init_args.num_val_samples=1",
    "--model.init_args.network.init_args.channels=8",
    "--model.init_args.network.init_args.channel_mults=[1, 2]",
    "--model.init_args.network.init_args.num_res_blocks=1",
    "--model.init_args.network.init_args.attention_levels=[]",
]


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
    ckpt = Path(root) / "outputs" / "vision" / "smoke_sr3" / "checkpoints" / "last.ckpt"
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


@pytest.mark.parametrize("name", CONFIGS)
def test_fast_dev_run(name, tmp_path, monkeypatch, sr3_ckpt):
    monkeypatch.chdir(tmp_path)
    args = [
        "fit",
        "-c",
        name,
        "--trainer.fast_dev_run=true",
        "--trainer.accelerator=cpu",
        "--trainer.enable_progress_bar=false",
    ]
    if not name.startswith("smoke"):
        args += SHRINK
    if name.startswith("invsr"):
        args += [f"--model.init_args.teacher_ckpt={sr3_ckpt}"]
    if name.endswith("div2k"):
        for split, n in (("train", 2), ("valid", 1)):
            for i in range(n):
                _png(tmp_path / "DIV2K" / f"DIV2K_{split}_HR" / f"{i:04d}.png", (64, 64, 3), i)
                _png(tmp_path / "DIV2K" / f"DIV2K_{split}_LR_bicubic" / "X4" / f"{i:04d}x4.png", (16, 16, 3), 9 + i)
        args += ["--data.init_args.eval_size=null", "--data.init_args.eval_batch_size=1"]
    from difflab.core.cli import run_cli
    from difflab.vision.data.datamodule import SRDataModule
    from difflab.vision.models.base import SRDiffusion

    cli = run_cli(SRDiffusion, SRDataModule, package="vision", args=args)
    assert cli.trainer.global_step == 1


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
    with pytest.raises(SystemExit):
        main(["upscale", str(tmp_path / "in"), str(tmp_path / "o2"), "--ckpt", str(sr3_ckpt), "--scale", "2"])


def test_fit_resumes_from_last_checkpoint(tmp_path, monkeypatch):
    """A run stopped after 2 steps continues from ``last.ckpt`` (weights, optimiser and step restored)."""
    import torch

    monkeypatch.chdir(tmp_path)
    assert main(["fit", "-c", "smoke_resshift", "--trainer.enable_progress_bar=false"]) == 0
    ckpt = tmp_path / "outputs" / "vision" / "smoke_resshift" / "checkpoints" / "last.ckpt"
    first = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert first["global_step"] == 2
    args = ["fit", "-c", "smoke_resshift", "--trainer.enable_progress_bar=false", "--trainer.max_steps=4"]
    assert main([*args, "--ckpt_path=last"]) == 0
    resumed = torch.load(ckpt, map_location="cpu", weights_only=False)
    assert resumed["global_step"] == 4
    assert resumed["optimizer_states"][0]["state"][0]["step"] == 4  # Adam's moments carried over, not restarted
