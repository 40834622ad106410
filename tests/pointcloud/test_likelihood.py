"""PF-ODE negative log-likelihood of clouds under PointDDPM: the closed form for an exact Gaussian score,
exact and Hutchinson divergences agreeing on a tiny network, the test-stage metric and the ``nll`` verb."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from difflab.core.testing import user_error_line
from difflab.pointcloud.cli import main
from difflab.pointcloud.likelihood import cloud_log_likelihood
from difflab.pointcloud.models import PointDDPM
from difflab.pointcloud.networks import PointSetDenoiser


class ExactGaussianEps(nn.Module):
    """eps of clouds whose coordinates are i.i.d. ``N(0, var)``: ``eps = s x / (a^2 var + s^2)``."""

    def __init__(self, var: float) -> None:
        super().__init__()
        self.var, self.process = var, None
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x: Tensor, t: Tensor, label: Tensor | None = None) -> Tensor:
        a, _, s = self.process.coefficients_like(t, x)
        return s * x / (a**2 * self.var + s**2) + 0 * self.dummy


def test_exact_gaussian_score_gives_the_closed_form_nll():
    var = 0.2**2
    net = ExactGaussianEps(var)
    model = PointDDPM(net).double()  # PVD's 1000-step chain
    net.process = model.process
    clouds = 0.2 * torch.randn(3, 32, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    t0 = torch.tensor([model.t_eps], dtype=torch.float64)
    a0, _, s0 = model.process.coefficients(t0)
    v0 = float(a0**2 * var + s0**2)
    truth = (-0.5 * clouds**2 / v0).sum((1, 2)) - 0.5 * 96 * math.log(2 * math.pi * v0)
    # the default prior at t = 1 is N(0, s(1)^2) while the data's marginal there is N(0, a^2 var + s^2):
    # the difference is tiny for the 1000-step chain (a(1)^2 = 4e-5)
    ours = cloud_log_likelihood(model, clouds, steps=48, batch=2, generator=torch.Generator().manual_seed(1))
    # Hutchinson with Rademacher probes is exact for a multiple of the identity, as here
    torch.testing.assert_close(ours, truth, rtol=0, atol=0.05)


def test_exact_and_hutchinson_agree_within_their_standard_error():
    torch.manual_seed(0)
    model = PointDDPM(PointSetDenoiser(preset="tiny"), num_steps=50)
    clouds = torch.randn(2, 12, 3, generator=torch.Generator().manual_seed(2)) * 0.5
    exact = model.log_likelihood({"x0": clouds}, steps=3, divergence="exact").double()
    draws = torch.stack(
        [
            cloud_log_likelihood(model, clouds, steps=3, generator=torch.Generator().manual_seed(s)).double()
            for s in range(24)
        ]
    )
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    assert bool(((mean - exact).abs() <= 4 * se + 1e-3).all()), (mean, exact, se)


def _write_clouds(folder, n: int, points: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pts = rng.normal(size=(points, 3)) * [1.0, 0.6, 0.3]
        np.savetxt(folder / f"cloud_{i}.xyz", pts, fmt="%.6f")


@pytest.fixture(scope="module")
def ddpm_ckpt(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddpm")
    _write_clouds(root / "clouds", 6, 80, 0)
    old = os.getcwd()
    os.chdir(root)
    try:
        args = ["fit", "--config", "smoke_ddpm", "--trainer.enable_progress_bar", "false"]
        args += ["--data.init_args.source", "pointfolder", "--data.init_args.root", str(root / "clouds")]
        args += ["--model.init_args.test_nll_steps", "2", "--model.init_args.num_val_samples", "0"]
        assert main(args) == 0
    finally:
        os.chdir(old)
    return root, root / "outputs/pointcloud/smoke_ddpm/lightning_logs/version_0/checkpoints/last.ckpt"


def test_nll_verb_prints_and_writes_the_table(ddpm_ckpt, tmp_path, capsys, monkeypatch):
    root, ckpt = ddpm_ckpt
    held = tmp_path / "held"
    _write_clouds(held, 3, 70, 1)
    out = tmp_path / "nll.csv"
    monkeypatch.setenv("DIFFLAB_PROGRESS_SECONDS", "0")
    args = ["nll", str(held), "--ckpt", str(ckpt), "--points", "64", "--steps", "2", "--batch", "2"]
    assert main([*args, "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "mean NLL over 3 clouds of 64 points" in captured.out and "nats/point" in captured.out
    assert "RK4 steps" in captured.err  # progress lines
    rows = out.read_text().splitlines()
    assert rows[0] == "cloud,nll_nats_per_point,nll_nats_per_cloud,bits_per_dim" and len(rows) == 4
    per_point, per_cloud, bpd = (float(v) for v in rows[1].split(",")[1:])
    assert math.isfinite(per_point) and per_cloud == pytest.approx(64 * per_point)
    assert bpd == pytest.approx(per_cloud / (3 * 64 * math.log(2)))
    # the same seed gives the same numbers; --overwrite is needed to replace the table
    assert main([*args, "--out", str(out), "--overwrite"]) == 0
    assert out.read_text().splitlines() == rows


def _error(argv: list[str], capsys) -> str:
    """The one-line error of ``main(argv)`` (exit status 2)."""
    return user_error_line(main, capsys, argv, keep=lambda line: line.startswith("difflab-pointcloud"))


def test_nll_verb_refuses_bad_inputs_in_one_line(ddpm_ckpt, tmp_path, capsys):
    root, ckpt = ddpm_ckpt
    (tmp_path / "empty").mkdir()
    assert "no point files" in _error(["nll", str(tmp_path / "empty"), "--ckpt", str(ckpt)], capsys)
    assert "--steps" in _error(["nll", str(root / "clouds"), "--ckpt", str(ckpt), "--steps", "0"], capsys)
    err = _error(["nll", str(root / "clouds"), "--ckpt", str(ckpt), "--label", "1", "--points", "16"], capsys)
    assert "--label 1" in err


def test_test_stage_logs_the_nll_per_point(ddpm_ckpt, capsys):
    root, ckpt = ddpm_ckpt
    old = os.getcwd()
    os.chdir(root)
    try:
        args = ["test", "--config", "smoke_ddpm", "--ckpt_path", str(ckpt), "--trainer.enable_progress_bar", "false"]
        args += ["--data.init_args.source", "pointfolder", "--data.init_args.root", str(root / "clouds")]
        args += ["--model.init_args.test_nll_steps", "2", "--model.init_args.num_val_samples", "0"]
        assert main(args) == 0
    finally:
        os.chdir(old)
    assert "test/nll_per_point" in capsys.readouterr().out
