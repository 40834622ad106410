"""Command line: fit -> sample / make-pairs / denoise, resume (every config's fast_dev_run, the checkpoint
round trip and help are in tests/architecture/test_contracts.py)."""

import numpy as np
import pytest

from difflab.core.cli import builtin_configs
from difflab.core.testing import user_error_line
from difflab.pointcloud.cli import main

CONFIGS = builtin_configs("pointcloud")


def test_configs_ship():
    assert {
        "psf_flow_pybullet",
        "psf_reflow_pybullet",
        "psf_distill_pybullet",
        "ddpm_pybullet",
        "iterativepfn_cgal",
        "score_cgal",
        "smoke_psf",
        "smoke_ddpm",
        "smoke_iterativepfn",
        "smoke_score",
    } <= set(CONFIGS)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """smoke_psf and smoke_iterativepfn fitted once; a pairs file from the flow."""
    root = tmp_path_factory.mktemp("fit")
    import os

    old = os.getcwd()
    os.chdir(root)
    try:
        for name in ("smoke_psf", "smoke_iterativepfn"):
            assert main(["fit", "--config", name, "--trainer.enable_progress_bar", "false"]) == 0
        ckpt = root / "outputs/pointcloud/smoke_psf/lightning_logs/version_0/checkpoints/last.ckpt"
        assert (
            main(
                [
                    "make-pairs",
                    "--ckpt",
                    str(ckpt),
                    "--num",
                    "12",
                    "--steps",
                    "2",
                    "--points",
                    "64",
                    str(root / "pairs.pt"),
                ]
            )
            == 0
        )
    finally:
        os.chdir(old)
    return root


def test_sample_and_denoise_verbs(trained, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ckpt = trained / "outputs/pointcloud/smoke_psf/lightning_logs/version_0/checkpoints/last.ckpt"
    assert main(["sample", "--ckpt", str(ckpt), "--num", "3", "--steps", "1", "--points", "64", "out"]) == 0
    from difflab.pointcloud.io import read_points, write_points

    assert read_points(tmp_path / "out/sample_002.ply").shape == (64, 3)
    assert (tmp_path / "out/samples.png").stat().st_size > 1000
    rng = np.random.default_rng(0)
    (tmp_path / "noisy").mkdir()
    for i in range(2):
        write_points(tmp_path / f"noisy/c{i}.xyz", rng.normal(size=(300, 3)))
    pfn = trained / "outputs/pointcloud/smoke_iterativepfn/lightning_logs/version_0/checkpoints/last.ckpt"
    assert main(["denoise", "noisy", "den", "--ckpt", str(pfn)]) == 0
    assert read_points(tmp_path / "den/c1.ply").shape == (300, 3)
    assert main(["denoise", "noisy/c0.xyz", "one.ply", "--ckpt", str(pfn), "--repeat", "2"]) == 0
    out = capsys.readouterr().out
    assert "artifact: out/samples.png" in out and "artifact: one.ply" in out
    with pytest.raises(SystemExit) as exc:
        main(["denoise", "noisy", "den2", "--ckpt", str(ckpt)])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"difflab-pointcloud: error: {ckpt}: a checkpoint of difflab.pointcloud.models.")
    assert "PointStraightFlow" in err and "PointFilter" in err and "\n" not in err


def _error(argv: list[str], capsys) -> str:
    """The one-line error of ``main(argv)`` (exit status 2)."""
    return user_error_line(main, capsys, argv, keep=lambda line: line.startswith("difflab-pointcloud"))


def test_verbs_refuse_bad_inputs_and_existing_outputs(trained, tmp_path, monkeypatch, capsys):
    from difflab.pointcloud.io import write_points

    monkeypatch.chdir(tmp_path)
    flow = trained / "outputs/pointcloud/smoke_psf/lightning_logs/version_0/checkpoints/last.ckpt"
    pfn = trained / "outputs/pointcloud/smoke_iterativepfn/lightning_logs/version_0/checkpoints/last.ckpt"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "mine.ply").write_text("keep")
    assert "--overwrite" in _error(["sample", "--ckpt", str(flow), "--num", "2", "out"], capsys)
    err = _error(["sample", "--ckpt", str(flow), "--num", "2", "--label", "1", "s"], capsys)
    assert "--label 1" in err and "not class-conditional" in err
    assert "--num_classes 3" in _error(["make-pairs", "--ckpt", str(flow), "--num_classes", "3", "p.pt"], capsys)
    assert "--overwrite" in _error(["make-pairs", "--ckpt", str(flow), str(trained / "pairs.pt")], capsys)
    (tmp_path / "empty.ply").write_bytes(b"")
    assert "empty.ply" in _error(["denoise", "empty.ply", "e.ply", "--ckpt", str(pfn)], capsys)
    (tmp_path / "junk.xyz").write_text("not numbers\n")
    assert "junk.xyz" in _error(["denoise", "junk.xyz", "j.ply", "--ckpt", str(pfn)], capsys)
    write_points(tmp_path / "few.xyz", np.random.default_rng(0).normal(size=(10, 3)))
    err = _error(["denoise", "few.xyz", "f.ply", "--ckpt", str(pfn)], capsys)
    assert "few.xyz" in err and "10 points" in err and "32" in err
    write_points(tmp_path / "ok.xyz", np.random.default_rng(0).normal(size=(100, 3)))
    assert main(["denoise", "ok.xyz", "ok.ply", "--ckpt", str(pfn)]) == 0
    assert "ok.ply" in _error(["denoise", "ok.xyz", "ok.ply", "--ckpt", str(pfn)], capsys)
    assert main(["denoise", "ok.xyz", "ok.ply", "--ckpt", str(pfn), "--overwrite"]) == 0
    assert not any((tmp_path / n).exists() for n in ("s", "p.pt", "e.ply", "j.ply", "f.ply"))


def test_resume_continues_from_last_checkpoint(trained, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    import torch

    args = ["fit", "--config", "smoke_psf", "--trainer.enable_progress_bar", "false"]
    assert main(args + ["--trainer.max_steps", "2"]) == 0
    ckpt = tmp_path / "outputs/pointcloud/smoke_psf/lightning_logs/version_0/checkpoints/last.ckpt"
    assert torch.load(ckpt, weights_only=False)["global_step"] == 2
    assert main(args + ["--trainer.max_steps", "4", "--ckpt_path", str(ckpt)]) == 0
    from difflab.core.lightning.checkpoint import find_last_checkpoint

    resumed = find_last_checkpoint(tmp_path / "outputs/pointcloud/smoke_psf")
    assert resumed != ckpt and torch.load(resumed, weights_only=False)["global_step"] == 4
