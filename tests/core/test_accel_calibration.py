"""Score calibration (Pang et al. 2023) against the exact score of a 2-D Gaussian mixture.

Oracles:

* the exact (Bayes-optimal) eps-model has zero mean noise prediction at every t, so the estimated
  ``eta_t`` is 0 within its Monte-Carlo error (|eta| <= 5 standard errors), and the calibrated sampler
  reproduces the exact sampler's samples within the effect of that error;
* a model with a known constant bias ``c`` added to eps gets ``eta_t = c`` back, and calibration
  removes it: DDIM samples and the denoising score-matching loss return to the unbiased model's;
* calibration does not increase the DSM loss (it lowers it by ``||eta_t||^2``) for a model whose
  bias depends on ``x_t`` and ``t``.
"""

from __future__ import annotations

import pytest
import torch

from difflab.core.accelerate import CalibratedDenoiser, estimate_eps_mean
from difflab.core.processes import VPSDE
from difflab.core.samplers import Denoiser, sample_ddim, time_grid
from difflab.core.toy import GaussianMixture

DT = torch.float64
pytestmark = pytest.mark.usefixtures("one_thread")
N_DATA = 4000


def mixture() -> GaussianMixture:
    return GaussianMixture.three_modes_2d(DT)


def dsm_loss(model, proc, data, g) -> tuple[float, float]:
    """Mean and standard error of ``||eps_model(x_t, t) - eps||^2`` with ``t ~ U(1e-3, 1)``."""
    t = 1e-3 + (1 - 1e-3) * torch.rand(data.shape[0], generator=g, dtype=DT)
    xt, eps = proc.sample_marginal(data, t, generator=g)
    per = ((model(xt, t) - eps) ** 2).sum(-1)
    return float(per.mean()), float(per.std() / per.shape[0] ** 0.5)


def biased(model, c):
    return lambda x, t: model(x, t) + c.to(x)


def test_exact_model_has_zero_mean_and_calibration_keeps_its_samples():
    gm, proc = mixture(), VPSDE()
    g = torch.Generator().manual_seed(0)
    exact = gm.exact_model(proc)
    table = estimate_eps_mean(exact, proc, gm.sample(N_DATA, g), times=21, generator=g)
    assert table.means.shape == (21, 2) and table.count == N_DATA
    z = table.means.abs() / table.stderr.clamp_min(1e-12)
    print(f"\nexact model: max |eta| {float(table.means.abs().max()):.4f}, max |eta|/stderr {float(z.max()):.2f}")
    assert float(z.max()) <= 5.0
    x = torch.randn(2000, 2, generator=g, dtype=DT)
    grid = time_grid(50, t_start=1.0, t_end=1e-3)
    plain = sample_ddim(Denoiser(exact, proc), x, grid)
    cal = sample_ddim(CalibratedDenoiser(Denoiser(exact, proc), table), x, grid)
    assert cal.nfe == plain.nfe == 50
    moved = float((cal.sample - plain.sample).norm(dim=-1).mean())
    print(f"mean displacement of the calibrated samples: {moved:.4f}")
    assert moved <= 0.05


def test_a_constant_eps_bias_is_removed():
    gm, proc = mixture(), VPSDE()
    g = torch.Generator().manual_seed(1)
    exact = gm.exact_model(proc)
    c = torch.tensor([0.3, -0.2], dtype=DT)
    bad = biased(exact, c)
    table = estimate_eps_mean(bad, proc, gm.sample(N_DATA, g), times=21, generator=g)
    torch.testing.assert_close(table.means, c.expand(21, 2), atol=float(5 * table.stderr.max()), rtol=0)
    x = torch.randn(2000, 2, generator=g, dtype=DT)
    grid = time_grid(50, t_start=1.0, t_end=1e-3)
    ref = sample_ddim(Denoiser(exact, proc), x, grid).sample
    off = sample_ddim(Denoiser(bad, proc), x, grid).sample
    fixed = sample_ddim(CalibratedDenoiser(Denoiser(bad, proc), table), x, grid).sample
    d_off = float((off - ref).norm(dim=-1).mean())
    d_fixed = float((fixed - ref).norm(dim=-1).mean())
    print(f"\nbias {c.tolist()}: sample displacement {d_off:.3f} uncalibrated, {d_fixed:.4f} calibrated")
    assert d_off > 0.2 and d_fixed <= 0.05
    # the DSM loss of the calibrated model is the unbiased model's (same x_t, eps draws)
    cal_model = CalibratedDenoiser(Denoiser(bad, proc), table).model
    data = gm.sample(N_DATA, g)
    l_exact, se = dsm_loss(exact, proc, data, torch.Generator().manual_seed(7))
    l_bad, _ = dsm_loss(bad, proc, data, torch.Generator().manual_seed(7))
    l_cal, _ = dsm_loss(cal_model, proc, data, torch.Generator().manual_seed(7))
    print(f"DSM loss: exact {l_exact:.4f} biased {l_bad:.4f} calibrated {l_cal:.4f} (se {se:.4f})")
    assert l_bad - l_exact == pytest.approx(float(c @ c), abs=4 * se)
    assert abs(l_cal - l_exact) <= 0.01


def test_calibration_does_not_increase_the_score_matching_loss():
    gm, proc = mixture(), VPSDE()
    g = torch.Generator().manual_seed(2)
    exact = gm.exact_model(proc)
    # an imperfect model: a bias that depends on x_t and t (nonzero mean under q_t)
    model = lambda x, t: 1.1 * exact(x, t) + 0.3 * torch.tanh(x + 1.0) * t[:, None]
    table = estimate_eps_mean(model, proc, gm.sample(N_DATA, g), times=41, generator=g)
    cal_model = CalibratedDenoiser(Denoiser(model, proc), table).model
    data = gm.sample(N_DATA, g)
    l_raw, se = dsm_loss(model, proc, data, torch.Generator().manual_seed(8))
    l_cal, _ = dsm_loss(cal_model, proc, data, torch.Generator().manual_seed(8))
    # the predicted decrease: the mean over t of ||eta_t||^2
    drop = float((table.means**2).sum(-1).mean())
    print(f"\nDSM loss {l_raw:.4f} -> {l_cal:.4f}, predicted drop {drop:.4f} (se {se:.4f})")
    assert l_cal <= l_raw
    assert l_raw - l_cal == pytest.approx(drop, rel=0.2)


def test_table_interpolates_linearly_and_refuses_per_element_times():
    gm, proc = mixture(), VPSDE()
    g = torch.Generator().manual_seed(3)
    model = lambda x, t: gm.exact_model(proc)(x, t) + t[:, None] * torch.tensor([1.0, -1.0], dtype=DT)
    table = estimate_eps_mean(model, proc, gm.sample(2000, g), times=torch.tensor([0.1, 0.5, 0.9], dtype=DT))
    x = torch.zeros(2, 2, dtype=DT)
    mid = table(torch.tensor([0.3, 0.7], dtype=DT), x)
    torch.testing.assert_close(mid, 0.5 * (table.means[:-1] + table.means[1:]))
    with pytest.raises(ValueError, match="one time per example"):
        table(torch.zeros(2, 2, dtype=DT), torch.zeros(2, 2, 2, dtype=DT))
    with pytest.raises(ValueError, match="ascending"):
        estimate_eps_mean(model, proc, gm.sample(10, g), times=torch.tensor([0.5, 0.1], dtype=DT))
