"""CSDI-style network, stochastic-process diffusion forecaster and the decomposition option."""

import pytest
import torch

from difflab.core.processes.correlated import CorrelatedNoise
from difflab.timeseries.data import ForecastDataModule
from difflab.timeseries.models.falda import DecomposedDiffusion, fourier_lowpass
from difflab.timeseries.models.spd import StochasticProcessDiffusion
from difflab.timeseries.networks.csdi import CSDIDenoiser


def tiny(d=1):
    return CSDIDenoiser(d, channels=8, n_blocks=1, heads=2, time_emb_dim=8, feature_emb_dim=4, diffusion_emb_dim=8)


@pytest.fixture(scope="module")
def batch():
    dm = ForecastDataModule("tmy3", context_length=24, prediction_length=8, batch_size=3)
    dm.setup()
    return next(iter(dm.val_dataloader()))


def test_network_attends_over_time_and_features(batch):
    net = tiny(8)
    torch.nn.init.normal_(net.output_proj2.weight)
    x = batch["x0"]
    t = torch.full((3,), 0.5)
    out = net(x, t, x, batch["cond_mask"], batch["times"], batch["calendar"])
    assert out.shape == x.shape
    # a change in one series at one step reaches other series (feature attention) and other steps (time attention)
    x2 = x.clone()
    x2[:, -1, 0] += 3.0
    out2 = net(x2, t, x, batch["cond_mask"], batch["times"], batch["calendar"])
    diff = (out2 - out).abs()
    assert diff[:, -1, 1:].sum() > 0 and diff[:, :-1, 0].sum() > 0


@pytest.mark.parametrize(
    "noise, diffusion, sampler",
    [
        ("gp", "discrete", "ddpm"),
        ("ou", "discrete", "ddim"),
        ("white", "discrete", "ddpm"),
        ("gp", "continuous", "euler_maruyama"),
    ],
)
def test_forecaster_loss_and_forecast(batch, noise, diffusion, sampler):
    model = StochasticProcessDiffusion(
        tiny(8), noise=noise, diffusion=diffusion, num_steps=10, sampler=sampler, sample_steps=4
    )
    if noise != "white":
        proc = model.process_for(batch["times"])
        assert isinstance(proc, CorrelatedNoise) and proc.cholesky().shape == (32, 32)
    loss = model.training_loss(batch, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss)
    s = model.forecast(batch, 5, generator=torch.Generator().manual_seed(0))
    assert s.shape == (5, *batch["x0"].shape) and torch.isfinite(s).all()
    # the given context is kept exactly; the horizon varies between samples
    assert torch.equal(s[:, :, :24], batch["x0"][None, :, :24].expand(5, -1, -1, -1))
    assert s[:, :, 24:].std(0).mean() > 0


def test_loss_ignores_non_target_cells(batch):
    model = StochasticProcessDiffusion(tiny(8), noise="ou", num_steps=10)
    b2 = dict(batch)
    b2["x0"] = batch["x0"].clone()
    b2["x0"][:, 24:] += 0.0
    l1 = model.training_loss(batch, torch.Generator().manual_seed(1))
    b2["target_mask"] = torch.zeros_like(batch["target_mask"])
    assert model.training_loss(b2, torch.Generator().manual_seed(1)) == 0
    assert l1 > 0


def test_irregular_times_bind_per_series():
    model = StochasticProcessDiffusion(tiny(1), noise="gp", kernel_scale=1.0)
    times = torch.tensor([[0.0, 1.0, 2.0, 3.0], [0.0, 0.5, 2.5, 3.0]])
    proc = model.process_for(times)
    assert proc.cholesky().shape == (2, 4, 4)
    cov = proc.covariance()
    assert cov[1, 0, 1] == pytest.approx(torch.exp(torch.tensor(-0.25)).item(), abs=1e-3)


def test_fourier_lowpass_keeps_mean_and_strong_frequencies():
    n = 48
    t = torch.arange(n, dtype=torch.float32)
    x = 3 + torch.sin(2 * torch.pi * t / 24) + 0.05 * torch.randn(n, generator=torch.Generator().manual_seed(0))
    low = fourier_lowpass(x[None, :, None], torch.ones(1, n, 1), top_k=1)[0, :, 0]
    assert torch.allclose(low, 3 + torch.sin(2 * torch.pi * t / 24), atol=0.1)


def test_decomposed_diffusion(batch):
    model = DecomposedDiffusion(
        tiny(8), context_length=24, prediction_length=8, num_steps=10, sampler="ddim", sample_steps=3
    )
    mean = model.mean_component(batch)
    assert mean.shape == batch["x0"].shape
    loss = model.training_loss(batch, torch.Generator().manual_seed(0))
    loss.backward()
    assert model.backbone.weight.grad.abs().sum() > 0
    s = model.forecast(batch, 3, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(s[:, :, :24], batch["x0"][None, :, :24].expand(3, -1, -1, -1), atol=1e-5)
