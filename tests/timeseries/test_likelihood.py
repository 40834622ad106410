"""PF-ODE log-likelihood of forecasts given their context: the closed form for an exact score of
Gaussian windows (white and GP noise, discrete and continuous diffusion), exact and Hutchinson
divergences agreeing on the CSDI network, and ``test/nll`` through the command line."""

from __future__ import annotations

import math

import pytest
import torch
from torch import Tensor, nn

from difflab.timeseries.cli import main
from difflab.timeseries.models.spd import StochasticProcessDiffusion
from difflab.timeseries.networks.csdi import CSDIDenoiser

C, H, D = 5, 4, 2


class ExactEps(nn.Module):
    """The exact (coloured) eps of horizon values ``N(0, c Sigma)`` under noise ``s L z``: the marginal
    is ``N(0, (a^2 c + s^2) Sigma)``, so ``E[eps | x_t] = s x_t / (a^2 c + s^2)`` for any ``Sigma``."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c, self.process = c, None
        self.dummy = nn.Parameter(torch.zeros(()))

    def forward(self, x_t, t, cond, cond_mask, times, calendar=None) -> Tensor:
        a, _, s = self.process.coefficients_like(t, x_t)
        return s * x_t / (a**2 * self.c + s**2) + 0 * self.dummy


def _batch(b: int = 3, seed: int = 0) -> dict[str, Tensor]:
    g = torch.Generator().manual_seed(seed)
    cond = torch.zeros(b, C + H, D, dtype=torch.float64)
    cond[:, :C] = 1
    return {
        "x0": 0.7 * torch.randn(b, C + H, D, generator=g, dtype=torch.float64),
        "cond_mask": cond,
        "target_mask": 1 - cond,
        "observed": torch.ones_like(cond),
        "times": torch.arange(C + H, dtype=torch.float64).expand(b, -1).clone(),
        "loc": torch.zeros(b, 1, D, dtype=torch.float64),
        "scale": torch.tensor([2.0, 0.5], dtype=torch.float64).expand(b, 1, D).clone(),
    }


def _truth(model, batch, c: float) -> Tensor:
    """``log N(x_H; 0, (a0^2 c + s0^2) Sigma_HH)`` per window, summed over series (float64)."""
    process = model.process_for(batch["times"])
    t0 = torch.tensor([model.t_eps], dtype=torch.float64)
    a0, _, s0 = process.coefficients(t0)
    sigma = process.covariance()[..., C:, C:] if hasattr(process, "covariance") else torch.eye(H)[None].double()
    cov = (a0**2 * c + s0**2) * sigma.expand(len(batch["x0"]), H, H)
    x = batch["x0"][:, C:].transpose(1, 2)  # (B, D, H)
    dist = torch.distributions.MultivariateNormal(torch.zeros(H, dtype=torch.float64), cov[:, None])
    return dist.log_prob(x).sum(1)


@pytest.mark.parametrize(("noise", "diffusion"), [("white", "discrete"), ("gp", "continuous"), ("ou", "discrete")])
def test_exact_score_gives_the_closed_form_conditional_density(noise, diffusion):
    c = 0.7**2
    net = ExactEps(c)
    model = StochasticProcessDiffusion(net, noise=noise, kernel_scale=2.0, diffusion=diffusion).double()
    batch = _batch()
    net.process = model.process_for(batch["times"])
    log_p, log_p_scaled, n = model.forecast_log_likelihood(batch, steps=48, divergence="exact")
    truth = _truth(model, batch, c)
    torch.testing.assert_close(log_p_scaled, truth, rtol=0, atol=0.02)
    assert n.tolist() == [H * D] * 3
    # data units: values times scale (2, 0.5) per series
    shift = -H * (math.log(2.0) + math.log(0.5))
    torch.testing.assert_close(log_p, log_p_scaled + shift)
    # Hutchinson is exact for this Jacobian (a multiple of the identity)
    _, hutch, _ = model.forecast_log_likelihood(batch, steps=48, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(hutch, log_p_scaled)


def test_exact_and_hutchinson_agree_on_the_csdi_network():
    torch.manual_seed(0)
    net = CSDIDenoiser(num_series=D, channels=8, n_blocks=1, heads=2, time_emb_dim=8, feature_emb_dim=4)
    model = StochasticProcessDiffusion(net, noise="gp", diffusion="continuous").double()
    batch = _batch(2, seed=1)
    _, exact, _ = model.forecast_log_likelihood(batch, steps=3, divergence="exact")
    draws = torch.stack(
        [
            model.forecast_log_likelihood(batch, steps=3, generator=torch.Generator().manual_seed(s))[1]
            for s in range(24)
        ]
    )
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    assert bool(((mean - exact).abs() <= 4 * se + 1e-6).all()), (mean, exact, se)


def test_a_window_with_a_missing_horizon_value_has_no_likelihood():
    net = ExactEps(0.5)
    model = StochasticProcessDiffusion(net, noise="white").double()
    batch = _batch(2)
    net.process = model.process
    batch["target_mask"][1, C, 0] = 0  # missing: generated but not observed
    log_p, _, _ = model.forecast_log_likelihood(batch, steps=2)
    assert math.isfinite(log_p[0].item()) and math.isnan(log_p[1].item())


def test_nll_verb_and_test_stage_through_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIFFLAB_PROGRESS_SECONDS", "0")
    fit = ["fit", "--config", "smoke_falda", "--trainer.enable_progress_bar", "false"]
    # the test metric is a model setting: Lightning's test takes the checkpoint's, so set it when fitting
    assert main([*fit, "--model.init_args.test_nll_steps", "2"]) == 0
    ckpt = next(tmp_path.rglob("last.ckpt"))
    capsys.readouterr()
    test = ["test", "--config", "smoke_falda", "--ckpt_path", str(ckpt), "--trainer.enable_progress_bar", "false"]
    assert main(test) == 0
    table = capsys.readouterr().out.replace("│", " ")
    assert "test/nll " in table and "test/nll_scaled" in table
    args = ["nll", "--ckpt", str(ckpt), "--steps", "2", "--max_windows", "3", "--batch_size", "2"]
    assert main([*args, "--out", "nll.txt"]) == 0
    captured = capsys.readouterr()
    # the smoke data keeps 2 test windows of 48 steps of one series
    assert "test: NLL " in captured.out and "over 2 windows, 96 values" in captured.out
    assert "RK4 steps" in captured.err
    line = (tmp_path / "nll.txt").read_text()
    assert main(args) == 0 and capsys.readouterr().out.splitlines()[0] == line.strip()  # same seed, same number
    for bad, what in ((["--steps", "0"], "--steps"), (["--out", "nll.txt"], "--overwrite")):
        with pytest.raises(SystemExit) as stop:
            main(["nll", "--ckpt", str(ckpt), *bad])
        err = capsys.readouterr().err.strip().splitlines()
        assert stop.value.code == 2 and len(err) == 1 and what in err[0], err
