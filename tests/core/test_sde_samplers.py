"""Euler–Maruyama, predictor-corrector and probability-flow steps against hand-written formulas.

The oracles are the score_sde / SGMSE update rules written out with the VP SDE's closed forms
(``beta(t) = beta_0 + t (beta_1 - beta_0)``, ``a(t) = exp(-t^2 (beta_1 - beta_0)/4 - t beta_0/2)``)
and the exact score of a Gaussian mixture; the random draws are replayed from a cloned generator.
"""

from __future__ import annotations

import math

import pytest
import torch

from difflab.core.processes import VESDE, VPSDE
from difflab.core.samplers import (
    Denoiser,
    sample_euler_maruyama,
    sample_predictor_corrector,
    sample_probability_flow,
    time_grid,
)
from difflab.core.samplers.sde import ald_step_size, langevin_step_size
from difflab.core.toy import GaussianMixture

DT = torch.float64
pytestmark = pytest.mark.usefixtures("one_thread")
B0, B1 = 0.1, 20.0


def beta(t: float) -> float:
    return B0 + t * (B1 - B0)


def a_vp(t: float) -> float:
    return math.exp(-0.25 * t**2 * (B1 - B0) - 0.5 * t * B0)


def setup(shape=(64, 3)):
    gm = GaussianMixture(
        torch.tensor([[1.0, 0.0, 0.5], [-1.0, 0.5, 0.0]], dtype=DT), torch.tensor([0.3, 0.2], dtype=DT)
    )
    proc = VPSDE(B0, B1)
    den = Denoiser(gm.exact_model(proc), proc)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=DT)
    return gm, proc, den, x


def test_euler_maruyama_step_formula():
    gm, proc, den, x = setup()
    t0, t1, t2 = 0.6, 0.5, 0.4
    grid = torch.tensor([t0, t1, t2], dtype=DT)
    g = torch.Generator().manual_seed(5)
    res = sample_euler_maruyama(den, x, grid, generator=g)
    gr = torch.Generator().manual_seed(5)
    # step 1: x_mean = x - (f - g^2 s) dt,  f = -beta x / 2,  g^2 = beta
    dt = t0 - t1
    s0 = gm.score_t(x, t0, proc)
    x1 = x - (-0.5 * beta(t0) * x - beta(t0) * s0) * dt
    x1 = x1 + math.sqrt(beta(t0) * dt) * torch.randn(x.shape, generator=gr, dtype=DT)
    # step 2 (last): mean only
    s1 = gm.score_t(x1, t1, proc)
    x2 = x1 - (-0.5 * beta(t1) * x1 - beta(t1) * s1) * (t1 - t2)
    torch.testing.assert_close(res.sample, x2, rtol=1e-10, atol=1e-10)
    assert res.nfe == 2


@pytest.mark.parametrize("corrector", ["langevin", "ald"])
def test_predictor_corrector_step_formula(corrector):
    gm, proc, den, x = setup()
    snr = 0.16
    t0, t1 = 0.5, 0.45
    res = sample_predictor_corrector(
        den,
        x,
        torch.tensor([t0, t1], dtype=DT),
        corrector=corrector,
        snr=snr,
        generator=torch.Generator().manual_seed(9),
    )
    gr = torch.Generator().manual_seed(9)
    # corrector at t0
    s0 = gm.score_t(x, t0, proc)
    z = torch.randn(x.shape, generator=gr, dtype=DT)
    if corrector == "langevin":
        alpha = (a_vp(t0) / a_vp(t1)) ** 2  # 1 - beta_i of the discretised step t1 -> t0
        z_norm = z.norm(dim=-1).mean()
        s_norm = s0.norm(dim=-1).mean()
        eps = 2 * alpha * (snr * z_norm / s_norm) ** 2
    else:
        eps = torch.tensor(2 * (snr * math.sqrt(1 - a_vp(t0) ** 2)) ** 2, dtype=DT)
    used = res.info["corrector_step_sizes"][0]
    torch.testing.assert_close(used, eps.expand_as(used), rtol=1e-10, atol=0)
    xc = x + eps * s0 + torch.sqrt(2 * eps) * z
    # reverse-diffusion predictor with the DDPM discretisation of the forward step t1 -> t0:
    # sqrt(alpha_i) = r = a(t0)/a(t1), beta_i = 1 - r^2, f = (r - 1) x, G^2 = beta_i
    r = a_vp(t0) / a_vp(t1)
    s1 = gm.score_t(xc, t0, proc)
    x_mean = xc - (r - 1) * xc + (1 - r**2) * s1
    torch.testing.assert_close(res.sample, x_mean, rtol=1e-10, atol=1e-10)
    assert res.nfe == 2  # N (n_corrector + 1)


def test_step_size_helpers():
    s = torch.tensor([[3.0, 4.0], [0.0, 1.0]], dtype=DT)  # norms 5, 1 -> mean 3
    z = torch.tensor([[1.0, 0.0], [0.0, 2.0]], dtype=DT)  # norms 1, 2 -> mean 1.5
    eps = langevin_step_size(s, z, snr=0.2, alpha=0.5)
    assert float(eps) == pytest.approx(2 * 0.5 * (0.2 * 1.5 / 3.0) ** 2)
    assert float(ald_step_size(torch.tensor(0.7, dtype=DT), 0.5)) == pytest.approx(2 * (0.5 * 0.7) ** 2)


def test_pc_nfe_and_options():
    gm, proc, den, x = setup()
    grid = time_grid(5, t_end=proc.t_min)
    res = sample_predictor_corrector(den, x, grid, n_corrector=2, generator=torch.Generator().manual_seed(0))
    assert res.nfe == 5 * 3 and len(res.info["corrector_step_sizes"]) == 10
    res = sample_predictor_corrector(
        den, x, grid, corrector="none", predictor="euler_maruyama", generator=torch.Generator().manual_seed(0)
    )
    assert res.nfe == 5
    # with no corrector and the EM predictor, PC is Euler-Maruyama
    em = sample_euler_maruyama(den, x, grid, generator=torch.Generator().manual_seed(0))
    # EM skips the noise on its last step, PC draws it and returns the mean: the draws line up
    torch.testing.assert_close(res.sample, em.sample)
    with pytest.raises(ValueError, match="corrector"):
        sample_predictor_corrector(den, x, grid, corrector="annealed")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="predictor"):
        sample_predictor_corrector(den, x, grid, predictor="ddim")  # type: ignore[arg-type]


def test_per_element_time_runs():
    """A (B, L) grid row: each token gets its own time."""
    gm, proc, den, _ = setup()
    x = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(1), dtype=DT)
    grid = torch.stack([torch.linspace(0.9, 0.1, 5, dtype=DT).expand(4, 5) * f for f in (1.0, 0.8, 0.6)])
    res = sample_euler_maruyama(den, x, grid, generator=torch.Generator().manual_seed(0))
    assert res.sample.shape == x.shape and torch.isfinite(res.sample).all()


def test_probability_flow_rk4_converges_faster_than_euler():
    """For Gaussian data the PF-ODE solution is an affine map of x_T; RK4 with 20 steps beats Euler with 80."""
    gm = GaussianMixture(torch.tensor([[0.5, -0.5]], dtype=DT), 0.3)
    proc = VESDE(sigma_min=0.01, sigma_max=5.0)
    den = Denoiser(gm.exact_model(proc), proc)
    x = torch.randn(256, 2, generator=torch.Generator().manual_seed(0), dtype=DT) * 5.0
    # exact: x_t - mu is scaled by sqrt(v(t_end)/v(t_start)) along the flow of a Gaussian
    t_end = 0.2
    v = lambda t: 0.3**2 + (0.01 * (5.0 / 0.01) ** t) ** 2  # noqa: E731
    exact = gm.means[0] + (x - gm.means[0]) * math.sqrt(v(t_end) / v(1.0))
    err = {}
    for method, steps in (("euler", 80), ("rk4", 20)):
        res = sample_probability_flow(den, x, time_grid(steps, t_end=t_end), method=method)
        err[method] = float((res.sample - exact).abs().max())
        print(f"\n{method} {steps} steps NFE {res.nfe} max error {err[method]:.2e}")
    assert err["rk4"] < err["euler"] / 10
    assert err["rk4"] < 1e-3
