"""Gaussian processes: closed-form marginals vs simulation of their SDE, posteriors vs Bayes' rule and diffusers."""

from __future__ import annotations

import math

import pytest
import torch

from difflab.core.processes import VESDE, VPSDE, CosineVP, DiscreteVP, LinearGaussianProcess, SubVPSDE

diffusers = pytest.importorskip("diffusers")
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy:DeprecationWarning")


class ResidualShift(LinearGaussianProcess):
    """A ResShift-like conditional process: ``x_t = x0 + eta (y - x0) + kappa sqrt(eta) eps``, Markov ratio 1."""

    conditional = True

    def coefficients(self, t):
        eta = 0.01 + 0.98 * t
        return 1 - eta, eta, 0.5 * eta.sqrt()

    def transition_ratio(self, s, t):
        return torch.ones_like(t)


SDE_PROCESSES = [VPSDE(), SubVPSDE(), VESDE(sigma_min=0.01, sigma_max=50.0), CosineVP(), DiscreteVP("linear", 1000)]
SDE_IDS = ["VPSDE", "SubVPSDE", "VESDE", "CosineVP", "DiscreteVP"]


@pytest.mark.parametrize("proc", SDE_PROCESSES, ids=SDE_IDS)
def test_marginals_match_euler_maruyama_simulation_of_the_sde(proc, one_thread):
    """20k paths of ``dx = f dt + g dW`` (1000 steps, float64) from ``x(0) ~ N(a(0) x0, s(0)^2)``."""
    n, steps = 20_000, 1000
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([-1.0, 2.0], dtype=torch.float64).expand(n, 2)
    t0 = torch.zeros(1, dtype=torch.float64)  # one time for all paths, broadcast over the batch
    mean0, std0 = proc.marginal(x0, t0)
    x = mean0 + std0 * torch.randn(x0.shape, generator=g, dtype=torch.float64)
    dt = 1.0 / steps
    checks = {250: None, 500: None, 900: None, 1000: None}
    for k in range(steps):
        t = torch.full((1,), k * dt, dtype=torch.float64)
        dw = torch.randn(x.shape, generator=g, dtype=torch.float64) * math.sqrt(dt)
        x = x + proc.drift(x, t) * dt + proc.diffusion(t)[:, None] * dw
        if k + 1 in checks:
            checks[k + 1] = x.clone()
    for k, xk in checks.items():
        if isinstance(proc, CosineVP) and k == 1000:
            continue  # the cosine drift is stiff (|k| dt ~ 0.2) in the last steps; Euler-Maruyama is biased there
        t = torch.full((1,), k * dt, dtype=torch.float64)
        mean, std = proc.marginal(x0[:1], t)
        emp_mean, emp_std = xk.mean(0), xk.std(0)
        # mean within a few percent of the std (sampling error alone is 0.7 %), std within 3 %
        assert ((emp_mean - mean[0]).abs() / std[0]).max() < 0.04, (k, emp_mean, mean[0], std[0])
        assert ((emp_std / std[0] - 1).abs()).max() < 0.03, (k, emp_std, std[0])


def _generic_sde(proc, t):
    """``k = a'/a``, ``g^2 = (s^2)' - 2 k s^2`` with autograd derivatives (the base-class derivation)."""
    a, b, s = proc.coefficients(t)
    da, db, ds = LinearGaussianProcess.coefficient_derivatives(proc, t)
    k = da / a
    return k, db - k * b, (2 * s * ds - 2 * k * s**2).clamp_min(0).sqrt()


@pytest.mark.parametrize("proc", SDE_PROCESSES, ids=SDE_IDS)
def test_sde_coefficients_closed_forms_equal_the_generic_derivation(proc):
    t = (torch.arange(20, 980, 37, dtype=torch.float64) + 0.5) / 1000
    k, m, gg = proc.sde_coefficients(t)
    k_ref, m_ref, g_ref = _generic_sde(proc, t)
    torch.testing.assert_close(k, k_ref, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(m, m_ref, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(gg, g_ref, rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(
        torch.stack(proc.coefficient_derivatives(t)),
        torch.stack(LinearGaussianProcess.coefficient_derivatives(proc, t)),
        rtol=1e-8,
        atol=1e-10,
    )


def test_sde_coefficients_match_the_score_sde_formulas():
    t = torch.linspace(0.01, 1.0, 50, dtype=torch.float64)
    vp, svp, ve = VPSDE(0.1, 20.0), SubVPSDE(0.1, 20.0), VESDE(0.01, 50.0)
    beta = 0.1 + t * 19.9
    torch.testing.assert_close(vp.sde_coefficients(t)[0], -0.5 * beta)
    torch.testing.assert_close(vp.diffusion(t), beta.sqrt())
    disc = 1 - torch.exp(-2 * 0.1 * t - 19.9 * t**2)
    torch.testing.assert_close(svp.diffusion(t), (beta * disc).sqrt())
    sigma = 0.01 * (50 / 0.01) ** t
    torch.testing.assert_close(ve.diffusion(t), sigma * math.sqrt(2 * math.log(50 / 0.01)))
    c = -0.25 * t**2 * 19.9 - 0.5 * t * 0.1
    torch.testing.assert_close(vp.coefficients(t)[0], c.exp())
    torch.testing.assert_close(vp.coefficients(t)[2], (1 - (2 * c).exp()).sqrt())
    torch.testing.assert_close(svp.coefficients(t)[2], 1 - (2 * c).exp())


# ------------------------------------------------------------------ posteriors
def _bayes_posterior(proc, x_t, x0, s, t, y):
    """q(x_s | x_t, x0) by Bayes' rule from q(x_s | x0[, y]) and the Markov kernel q(x_t | x_s, x0[, y])."""
    a_s, b_s, sd_s = (c[:, None] for c in proc.coefficients(s))
    a_t, b_t, sd_t = (c[:, None] for c in proc.coefficients(t))
    r = proc.transition_ratio(s, t)[:, None]
    yy = y if y is not None else torch.zeros_like(x0)
    m_s = a_s * x0 + b_s * yy
    c = (a_t - r * a_s) * x0 + (b_t - r * b_s) * yy  # kernel: x_t = r x_s + c + N(0, v)
    v = sd_t**2 - r**2 * sd_s**2
    prec = 1 / sd_s**2 + r**2 / v
    mean = (m_s / sd_s**2 + r * (x_t - c) / v) / prec
    return mean, (1 / prec).sqrt()


@pytest.mark.parametrize(
    "proc", [VPSDE(), SubVPSDE(), VESDE(), CosineVP(), DiscreteVP("cosine", 100), ResidualShift()], ids=repr
)
def test_posterior_is_bayes_rule(proc):
    g = torch.Generator().manual_seed(1)
    B = 6
    x0, noise = torch.randn(2, B, 3, generator=g, dtype=torch.float64)
    y = torch.randn(B, 3, generator=g, dtype=torch.float64) if proc.conditional else None
    t = torch.linspace(0.3, 0.95, B, dtype=torch.float64)
    s = t - torch.linspace(0.01, 0.25, B, dtype=torch.float64)
    x_t, _ = proc.sample_marginal(x0, t, y, noise=noise)
    mean, std = proc.posterior(x_t, x0, s, t, y, eta=1.0)
    ref_mean, ref_std = _bayes_posterior(proc, x_t, x0, s, t, y)
    torch.testing.assert_close(mean, ref_mean, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(std.expand_as(ref_std), ref_std.expand_as(std), rtol=1e-9, atol=1e-12)
    # eta = 0: deterministic, on the marginal's noise direction
    mean0, std0 = proc.posterior(x_t, x0, s, t, y, eta=0.0)
    assert (std0 == 0).all()
    torch.testing.assert_close(mean0, proc.sample_marginal(x0, s, y, noise=noise)[0], rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("n", [1000, 50, 7])
def test_discrete_posterior_matches_diffusers_ddpm_step(n):
    """DDPMScheduler.step with ``prediction_type="sample"`` samples q(x_prev | x_t, x0); ours matches it.

    Coarse grids (skipped steps) included.
    """
    T = 1000
    proc = DiscreteVP("linear", T)
    sch = diffusers.DDPMScheduler(
        num_train_timesteps=T, beta_schedule="linear", prediction_type="sample", clip_sample=False
    )
    sch.alphas_cumprod = proc.alphas_cumprod[1:].clone()  # our float64 schedule (the float32 one is tested elsewhere)
    sch.set_timesteps(n)
    ts = sch.timesteps.tolist()
    g = torch.Generator().manual_seed(2)
    x0, x_t = torch.randn(2, 4, 5, generator=g, dtype=torch.float64)
    for idx in sorted({0, len(ts) // 2, len(ts) - 2, len(ts) - 1}):
        j = ts[idx]
        j_prev = ts[idx + 1] if idx + 1 < len(ts) else -1
        ref = sch.step(x0, j, x_t, generator=torch.Generator().manual_seed(idx)).prev_sample
        t = torch.full((4,), (j + 1) / T, dtype=torch.float64)
        s = torch.full((4,), (j_prev + 1) / T, dtype=torch.float64)
        mean, std = proc.posterior(x_t, x0, s, t, eta=1.0)
        z = torch.randn(x_t.shape, generator=torch.Generator().manual_seed(idx), dtype=torch.float64)
        ours = mean + std * z if j > 0 else mean  # diffusers adds no noise at its last timestep
        torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
        # the textbook DDPM coefficients (Ho et al. Eq. 7)
        ab_t, ab_s = proc.alpha_bar(t)[:, None], proc.alpha_bar(s)[:, None]
        beta = 1 - ab_t / ab_s
        mu = ab_s.sqrt() * beta / (1 - ab_t) * x0 + (ab_t / ab_s).sqrt() * (1 - ab_s) / (1 - ab_t) * x_t
        torch.testing.assert_close(mean, mu, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(std**2, ((1 - ab_s) / (1 - ab_t) * beta).expand_as(std), rtol=1e-10, atol=1e-15)


def test_prior_sample_and_conditional_checks():
    proc = VESDE(0.01, 50.0)
    z = proc.prior_sample((20_000, 2), generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    assert abs(z.std().item() / 50.0 - 1) < 0.02
    res = ResidualShift()
    with pytest.raises(ValueError, match="ResidualShift"):
        res.mean(torch.zeros(2, 3), torch.full((2,), 0.5))
    y = torch.full((20_000, 2), 3.0, dtype=torch.float64)
    p = res.prior_sample(y.shape, y=y, generator=torch.Generator().manual_seed(1))
    _, b1, s1 = res.coefficients(torch.ones(1, dtype=torch.float64))
    assert abs(p.mean().item() - 3.0 * b1.item()) < 0.02
    assert abs(p.std().item() / s1.item() - 1) < 0.02
