"""OUVE, residual-shift (ResShift / RDDM / Resfusion) and flow processes against closed forms,
Euler-Maruyama simulation of their SDE, Bayes' rule and the papers' own formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from difflab.core.parameterization import from_x0_eps, to_x0_eps
from difflab.core.processes import (
    OUVESDE,
    ConditionalFlow,
    DiscreteVP,
    FlowMatching,
    LinearGaussianProcess,
    RDDMProcess,
    ResfusionProcess,
    ResidualShift,
    reflow_pairs,
)
from difflab.core.samplers.base import SampleResult

F64 = torch.float64


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def euler_maruyama(process: LinearGaussianProcess, x0, y, t_ends, steps: int, n: int, gen):
    """Simulate the base-class forward SDE dx = f dt + g dW from x(0) ~ N(a(0) x0 + b(0) y, s(0)^2)
    with step 1/steps, returning the paths at each time in ``t_ends`` (multiples of the step)."""
    x0 = x0.expand(n, -1).clone()
    yy = y.expand(n, -1).clone() if y is not None else None
    mean0, std0 = process.marginal(x0, torch.zeros(1, dtype=F64), yy)
    x = mean0 + std0 * torch.randn(x0.shape, generator=gen, dtype=F64)
    dt = 1.0 / steps
    out = []
    for i in range(round(max(t_ends) * steps)):
        t = torch.full((1,), i * dt, dtype=F64)  # one time for all paths, broadcast
        g = process.diffusion(t)
        x = x + process.drift(x, t, yy) * dt + g * math.sqrt(dt) * torch.randn(x.shape, generator=gen, dtype=F64)
        if any(abs((i + 1) * dt - te) < dt / 2 for te in t_ends):
            out.append(x.clone())
    return out


CASES = [
    ("ouve", lambda: OUVESDE(), [0.4, 1.0]),
    ("resshift", lambda: ResidualShift(), [0.5, 0.8]),
    ("flow", lambda: FlowMatching(), [0.5, 0.8]),
    ("flow_sigma_min", lambda: FlowMatching(sigma_min=0.1), [0.5]),
    ("conditional_flow", lambda: ConditionalFlow(sigma_min=0.05, sigma_max=0.487), [0.5, 0.8]),
]


@pytest.mark.parametrize("name,make,t_ends", CASES, ids=[c[0] for c in CASES])
def test_marginal_matches_euler_maruyama(name, make, t_ends, one_thread):
    process = make()
    x0 = torch.tensor([[0.7]], dtype=F64)
    y = torch.tensor([[-0.5]], dtype=F64) if process.conditional else None
    n = 20000
    paths = euler_maruyama(process, x0, y, t_ends, steps=1000, n=n, gen=_gen(10))
    for x, t_end in zip(paths, t_ends):
        t = torch.tensor([t_end], dtype=F64)
        mean, std = process.marginal(x0, t, y)
        sd = float(std.flatten()[0])
        emp_mean, emp_std = x.mean(0), x.std(0)
        # mean: 5 standard errors + small discretisation bias; std: a few percent
        assert torch.allclose(emp_mean, mean[0], atol=5 * sd / math.sqrt(n) + 0.01), (name, t_end, emp_mean, mean)
        assert torch.allclose(emp_std, torch.full_like(emp_std, sd), rtol=0.03), (name, t_end, emp_std, sd)


def test_closed_form_derivatives_match_finite_differences():
    t = torch.tensor([0.13, 0.41, 0.77], dtype=F64)
    h = 1e-6
    processes = [
        OUVESDE(),
        ResidualShift(),
        RDDMProcess(num_steps=50),
        ResfusionProcess(),
        FlowMatching(0.1),
        ConditionalFlow(0.05, 0.5),
    ]
    for p in processes:
        hi, lo = p.coefficients(t + h), p.coefficients(t - h)
        for d, c_hi, c_lo in zip(p.coefficient_derivatives(t), hi, lo):
            assert torch.allclose(d, (c_hi - c_lo) / (2 * h), rtol=1e-5, atol=1e-7), type(p).__name__
        # closed-form SDE coefficients agree with the base derivation away from the boundary
        for mine, generic in zip(p.sde_coefficients(t), LinearGaussianProcess.sde_coefficients(p, t)):
            assert torch.allclose(mine, generic, rtol=1e-9, atol=1e-12), type(p).__name__


# ---------------------------------------------------------------------------------------------- OUVE
def test_ouve_closed_form_variance_is_the_integral_of_the_sde():
    theta, smin, smax = 1.5, 0.05, 0.5
    p = OUVESDE(theta, smin, smax)
    lam = math.log(smax / smin)
    g2 = lambda u: (smin * (smax / smin) ** u) ** 2 * 2 * lam  # noqa: E731
    for t in [0.03, 0.3, 0.7, 1.0]:
        var_quad, _ = integrate.quad(lambda u, t=t: math.exp(-2 * theta * (t - u)) * g2(u), 0, t, epsabs=1e-14)
        # the formula as written in SGMSE+ / the fact sheet
        var_sheet = smin**2 * (math.exp(2 * (theta + lam) * t) - 1) * lam * math.exp(-2 * theta * t) / (theta + lam)
        a, b, s = p.coefficients(torch.tensor([t], dtype=F64))
        assert s.item() ** 2 == pytest.approx(var_quad, rel=1e-10)
        assert s.item() ** 2 == pytest.approx(var_sheet, rel=1e-10)
        assert a.item() == pytest.approx(math.exp(-theta * t))
        assert b.item() == pytest.approx(1 - math.exp(-theta * t))
    k, m, g = p.sde_coefficients(torch.tensor([0.5], dtype=F64))
    assert (k.item(), m.item()) == (-theta, theta)
    assert g.item() == pytest.approx(smin * (smax / smin) ** 0.5 * math.sqrt(2 * lam))
    assert p.t_min == 0.03 and p.conditional


def test_ouve_prior_sample_statistics_and_sigma_inverse():
    p = OUVESDE()
    y = torch.randn(4000, 8, generator=_gen(1), dtype=F64)
    x1 = p.prior_sample(y.shape, y=y, generator=_gen(2))
    lam = math.log(10.0)
    s1 = math.sqrt(0.05**2 * (math.exp(2 * (1.5 + lam)) - 1) * lam * math.exp(-3.0) / (1.5 + lam))
    assert s1 == pytest.approx(0.3890, abs=1e-4)
    diff = x1 - y
    assert abs(diff.mean().item()) < 4 * s1 / math.sqrt(diff.numel())
    assert diff.std().item() == pytest.approx(s1, rel=0.02)
    t = torch.tensor([0.03, 0.2, 0.9], dtype=F64)
    assert torch.allclose(p.t_from_sigma(p.sigma(t)), t, atol=1e-12)
    with pytest.raises(ValueError, match="conditional"):
        p.prior_sample((2, 3))


def test_ouve_towards_predicted_mean_is_the_same_process():
    """StoRM: OU towards y_hat; with y_hat as y the mean is e^{-theta t} x0 + (1 - e^{-theta t}) y_hat."""
    p = OUVESDE()
    x0 = torch.randn(3, 2, 5, generator=_gen(3), dtype=F64)
    y_hat = torch.randn(3, 2, 5, generator=_gen(4), dtype=F64)
    t = torch.tensor([0.2, 0.5, 1.0], dtype=F64)
    mean, _ = p.marginal(x0, t, y_hat)
    e = torch.exp(-1.5 * t)[:, None, None]
    assert torch.allclose(mean, e * x0 + (1 - e) * y_hat)
    assert torch.allclose(p.drift(x0, t, y_hat), 1.5 * (y_hat - x0))


def test_per_element_time():
    p = ResidualShift()
    x0 = torch.randn(2, 4, 3, generator=_gen(5), dtype=F64)
    y = torch.randn(2, 4, 3, generator=_gen(6), dtype=F64)
    t = torch.rand(2, 4, generator=_gen(7), dtype=F64)
    xt, eps = p.sample_marginal(x0, t, y, generator=_gen(8))
    eta = p.eta(t)[..., None]
    assert torch.allclose(xt, x0 + eta * (y - x0) + 2.0 * eta.sqrt() * eps)
    for q in (OUVESDE(), ConditionalFlow()):
        xt, eps = q.sample_marginal(x0, t, y, generator=_gen(9))
        a, b, s = q.coefficients(t)
        assert torch.allclose(xt, a[..., None] * x0 + b[..., None] * y + s[..., None] * eps)


# ---------------------------------------------------------------------------------------------- ResShift
def _paper_etas(T, kappa=2.0, p=0.3, min_noise=0.04, max_noise=0.99):
    """Yue et al. 2023, Eq. (10): sqrt(eta_t) = sqrt(eta_1) b0^{beta_t}, written out with numpy."""
    sqrt_eta1 = min(min_noise / kappa, min_noise)
    b0 = math.exp(math.log(max_noise / sqrt_eta1) / (T - 1))
    beta = ((np.arange(1, T + 1) - 1) / (T - 1)) ** p * (T - 1)
    return (sqrt_eta1 * b0**beta) ** 2


def test_resshift_schedule_matches_paper_and_published_values():
    p = ResidualShift(num_steps=15)
    assert np.allclose(p.etas[1:].numpy(), _paper_etas(15), rtol=1e-12)
    published = [
        0.020,
        0.117,
        0.176,
        0.234,
        0.292,
        0.351,
        0.412,
        0.476,
        0.542,
        0.610,
        0.681,
        0.754,
        0.830,
        0.909,
        0.990,
    ]
    assert np.allclose(p.etas[1:].sqrt().numpy(), published, atol=6e-4)
    v3 = ResidualShift(num_steps=4, min_noise=0.2)
    assert np.allclose(v3.etas[1:].sqrt().numpy(), [0.100, 0.520, 0.761, 0.990], atol=6e-4)
    # step k at t = k/T, eta(0) = 0, linear in between
    t = torch.tensor([0.0, 3 / 15, 3.5 / 15], dtype=F64)
    e = _paper_etas(15)
    assert torch.allclose(p.eta(t), torch.tensor([0.0, e[2], 0.5 * (e[2] + e[3])], dtype=F64))


def _bayes_posterior_scalar(x_t, x0, y, eta_s, eta_t, kappa):
    """Posterior of x_s given x_t by numerical integration over a grid of x_s values, with the prior
    q(x_s | x0, y) = N(x0 + eta_s (y - x0), kappa^2 eta_s) and ResShift's Markov kernel
    x_t = x_s + (eta_t - eta_s)(y - x0) + kappa sqrt(eta_t - eta_s) noise."""
    m_s, v_s = x0 + eta_s * (y - x0), kappa**2 * eta_s
    alpha = eta_t - eta_s
    grid = np.linspace(m_s - 12 * math.sqrt(v_s), m_s + 12 * math.sqrt(v_s), 400001)
    log_w = -((grid - m_s) ** 2) / (2 * v_s) - (x_t - grid - alpha * (y - x0)) ** 2 / (2 * kappa**2 * alpha)
    w = np.exp(log_w - log_w.max())
    z = np.trapezoid(w, grid)
    mean = np.trapezoid(w * grid, grid) / z
    var = np.trapezoid(w * (grid - mean) ** 2, grid) / z
    return mean, var


@pytest.mark.parametrize("s_t", [(4 / 15, 5 / 15), (0.31, 0.47), (13 / 15, 14 / 15)])
def test_resshift_posterior_is_bayes_rule_and_the_paper_formula(s_t):
    p = ResidualShift()
    kappa = p.kappa
    s, t = (torch.tensor([v], dtype=F64) for v in s_t)
    x0, y, x_t = 0.3, -0.8, 0.1
    mean, std = p.posterior(
        torch.tensor([[x_t]], dtype=F64), torch.tensor([[x0]], dtype=F64), s, t, torch.tensor([[y]], dtype=F64)
    )
    eta_s, eta_t = p.eta(s).item(), p.eta(t).item()
    b_mean, b_var = _bayes_posterior_scalar(x_t, x0, y, eta_s, eta_t, kappa)
    assert mean.item() == pytest.approx(b_mean, abs=1e-8)
    assert std.item() ** 2 == pytest.approx(b_var, rel=1e-6)
    # the paper: N((eta_{t-1}/eta_t) x_t + (alpha_t/eta_t) x0, kappa^2 eta_{t-1} alpha_t / eta_t)
    alpha = eta_t - eta_s
    assert mean.item() == pytest.approx(eta_s / eta_t * x_t + alpha / eta_t * x0, abs=1e-12)
    assert std.item() ** 2 == pytest.approx(kappa**2 * eta_s * alpha / eta_t, rel=1e-12)


def test_resshift_prior_and_final_step():
    p = ResidualShift()
    y = torch.randn(2000, 16, generator=_gen(11), dtype=F64)
    xT = p.prior_sample(y.shape, y=y, generator=_gen(12))
    assert (xT - y).std().item() == pytest.approx(2.0 * 0.99, rel=0.02)
    # posterior to t = 0 returns x0 exactly
    x0 = torch.randn(3, 4, generator=_gen(13), dtype=F64)
    mean, std = p.posterior(xT[:3, :4], x0, torch.zeros(3, dtype=F64), torch.full((3,), 1 / 15, dtype=F64), y[:3, :4])
    assert torch.allclose(mean, x0) and float(std.abs().max()) == 0.0


# ---------------------------------------------------------------------------------------------- RDDM
def _rddm_paper(T, sum_scale):
    alphas = np.array([(T + 1 - t) / (T * (T + 1) / 2) for t in range(1, T + 1)])
    betas2 = np.array([t * sum_scale / (T * (T + 1) / 2) for t in range(1, T + 1)])
    abar = np.concatenate([[0.0], np.cumsum(alphas)])
    bbar2 = np.concatenate([[0.0], np.cumsum(betas2)])
    return np.concatenate([[0.0], alphas]), np.concatenate([[0.0], betas2]), abar, bbar2


def test_rddm_coefficients_and_posterior_match_the_paper():
    T, sum_scale = 20, 0.01
    p = RDDMProcess(num_steps=T, sum_scale=sum_scale)
    alphas, betas2, abar, bbar2 = _rddm_paper(T, sum_scale)
    assert abar[-1] == pytest.approx(1.0) and bbar2[-1] == pytest.approx(sum_scale)
    k = torch.arange(T + 1, dtype=F64)
    a, b, s = p.coefficients(p.time(k))
    assert np.allclose(a.numpy(), 1 - abar) and np.allclose(b.numpy(), abar) and np.allclose(s.numpy() ** 2, bbar2)
    # posterior mean c1 I_t + c2 I_res + c3 I_0 and variance beta_t^2 bbar_{t-1}^2 / bbar_t^2
    g = _gen(21)
    I0, Iin, It = (torch.randn(1, 6, generator=g, dtype=F64) for _ in range(3))
    Ires = Iin - I0
    for t in (2, 7, T):
        c1 = bbar2[t - 1] / bbar2[t]
        c2 = (betas2[t] * abar[t - 1] - bbar2[t - 1] * alphas[t]) / bbar2[t]
        c3 = betas2[t] / bbar2[t]
        mean, std = p.posterior(It, I0, p.time(t - 1).reshape(1), p.time(t).reshape(1), Iin)
        assert torch.allclose(mean, c1 * It + c2 * Ires + c3 * I0, atol=1e-12)
        assert std.item() ** 2 == pytest.approx(betas2[t] * bbar2[t - 1] / bbar2[t], rel=1e-10)
        # the paper's DDIM form, for sigma = eta * posterior std
        for eta in (0.0, 0.5):
            eps = (It - I0 - abar[t] * Ires) / math.sqrt(bbar2[t])
            sig = eta * math.sqrt(betas2[t] * bbar2[t - 1] / bbar2[t])
            ddim = It - (abar[t] - abar[t - 1]) * Ires - (math.sqrt(bbar2[t]) - math.sqrt(bbar2[t - 1] - sig**2)) * eps
            mean, std = p.posterior(It, I0, p.time(t - 1).reshape(1), p.time(t).reshape(1), Iin, eta=eta)
            assert torch.allclose(mean, ddim, atol=1e-12) and std.item() == pytest.approx(sig, abs=1e-14)
    # restoration prior I_in + sqrt(sum_scale) z
    y = torch.randn(3000, 10, generator=_gen(22), dtype=F64)
    xT = p.prior_sample(y.shape, y=y, generator=_gen(23))
    assert (xT - y).std().item() == pytest.approx(math.sqrt(sum_scale), rel=0.02)


def test_rddm_generation_is_ddim():
    """I_in = 0 with 1 - abar^RDDM = sqrt(abar^DDIM), bbar^2 = 1 - abar^DDIM: RDDM's deterministic step is DDIM's."""
    vp = DiscreteVP("linear", num_steps=100)
    rddm = RDDMProcess.from_ddim(vp.alphas_cumprod[1:])
    k = torch.arange(101, dtype=F64)
    a_r, _, s_r = rddm.coefficients(rddm.time(k))
    a_v, _, s_v = vp.coefficients(vp.time(k))
    assert torch.allclose(a_r, a_v, atol=1e-12) and torch.allclose(s_r, s_v, atol=1e-12)
    g = _gen(31)
    x_t = torch.randn(4, 3, 8, generator=g, dtype=F64)
    x0_hat = torch.randn(4, 3, 8, generator=g, dtype=F64)
    for s_k, t_k in [(0, 10), (40, 60), (90, 100)]:
        s, t = torch.full((4,), s_k / 100, dtype=F64), torch.full((4,), t_k / 100, dtype=F64)
        m_r, _ = rddm.posterior(x_t, x0_hat, s, t, eta=0.0)
        m_v, _ = vp.posterior(x_t, x0_hat, s, t, eta=0.0)
        # DDIM written out: sqrt(abar_s) x0 + sqrt(1 - abar_s) eps_hat
        ab_s, ab_t = vp.alphas_cumprod[s_k], vp.alphas_cumprod[t_k]
        eps_hat = (x_t - ab_t.sqrt() * x0_hat) / (1 - ab_t).sqrt()
        ddim = ab_s.sqrt() * x0_hat + (1 - ab_s).sqrt() * eps_hat
        assert torch.allclose(m_r, ddim, atol=1e-10) and torch.allclose(m_v, ddim, atol=1e-10)


# ---------------------------------------------------------------------------------------------- Resfusion
def test_resfusion_schedule_and_coefficients_match_the_paper():
    p = ResfusionProcess(num_steps=12)
    assert p.num_steps == 5
    assert np.allclose(p.alphas_cumprod[1:].sqrt().numpy(), [0.996, 0.913, 0.759, 0.557, 0.5], atol=6e-4)
    # untruncated part equals the scaled linear schedule
    betas = np.linspace(1e-4 * 1000 / 12, 0.02 * 1000 / 12, 12)
    assert np.allclose(p.alphas_cumprod[1:5].numpy(), np.cumprod(1 - betas)[:4])
    g = _gen(41)
    x0, x_deg, eps = (torch.randn(1, 7, generator=g, dtype=F64) for _ in range(3))
    R = x_deg - x0
    for k in range(1, 6):
        t = p.time(k).reshape(1)
        ab = p.alphas_cumprod[k]
        xt, _ = p.sample_marginal(x0, t, x_deg, noise=eps)
        assert torch.allclose(xt, ab.sqrt() * x0 + (1 - ab.sqrt()) * R + (1 - ab).sqrt() * eps)
    # at T' the mean is 0.5 x_deg: the prior 0.5 x_deg + sqrt(1 - abar_T') z needs no clean image
    mean, std = p.marginal(x0, torch.ones(1, dtype=F64), x_deg)
    assert torch.allclose(mean, 0.5 * x_deg) and std.item() == pytest.approx(math.sqrt(0.75))
    y = torch.randn(3000, 10, generator=_gen(42), dtype=F64)
    xT = p.prior_sample(y.shape, y=y, generator=_gen(43))
    assert (xT - 0.5 * y).std().item() == pytest.approx(math.sqrt(0.75), rel=0.02)
    assert abs((xT - 0.5 * y).mean().item()) < 0.03


def test_resfusion_posterior_is_ddpm_step_with_resnoise():
    """x_{t-1} = (x_t - beta_t / sqrt(1 - abar_t) eps_R) / sqrt(alpha_t) + sqrt(beta_tilde) z,
    eps_R = eps + (1 - sqrt(alpha_t)) sqrt(1 - abar_t) / beta_t * R."""
    p = ResfusionProcess(num_steps=12)
    g = _gen(51)
    x0, x_deg, eps = (torch.randn(2, 9, generator=g, dtype=F64) for _ in range(3))
    R = x_deg - x0
    for k in range(1, 6):
        s, t = p.time(k - 1).expand(2), p.time(k).expand(2)
        ab_t, ab_s = p.alphas_cumprod[k], p.alphas_cumprod[k - 1]
        alpha = ab_t / ab_s
        beta = 1 - alpha
        x_t, _ = p.sample_marginal(x0, t, x_deg, noise=eps)
        eps_r = eps + (1 - alpha.sqrt()) * (1 - ab_t).sqrt() / beta * R
        mu = (x_t - beta / (1 - ab_t).sqrt() * eps_r) / alpha.sqrt()
        var = (1 - ab_s) / (1 - ab_t) * beta
        mean, std = p.posterior(x_t, x0, s, t, x_deg)
        assert torch.allclose(mean, mu, atol=1e-10), k
        assert torch.allclose(std[:, 0] ** 2, var.expand(2), rtol=1e-10), k


# ---------------------------------------------------------------------------------------------- flows
def test_flow_matching_coefficients_velocity_and_sigma():
    fm = FlowMatching()
    g = _gen(61)
    x0, x1 = torch.randn(3, 5, generator=g, dtype=F64), torch.randn(3, 5, generator=g, dtype=F64)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=F64)
    xt, _ = fm.sample_marginal(x0, t, noise=x1)
    assert torch.allclose(xt, (1 - t[:, None]) * x0 + t[:, None] * x1)
    assert torch.allclose(from_x0_eps(fm, "velocity", x0, x1, t), x1 - x0)
    assert torch.allclose(fm.velocity_target(x0, x1), x1 - x0)
    x0_hat, eps_hat = to_x0_eps(fm, "velocity", x1 - x0, xt, t)
    assert torch.allclose(x0_hat, x0) and torch.allclose(eps_hat, x1)
    fm2 = FlowMatching(sigma_min=0.1)
    a, _, s = fm2.coefficients(t)
    assert torch.allclose(s, 0.1 + 0.9 * t) and torch.allclose(a, 1 - t)
    assert torch.allclose(fm2.velocity_target(x0, x1), from_x0_eps(fm2, "velocity", x0, x1, t))
    for p in (fm, fm2):
        assert torch.allclose(p.t_from_sigma(p.sigma(t)), t)
    prior = fm.prior_sample((4000, 8), generator=_gen(62), dtype=F64)
    assert prior.std().item() == pytest.approx(1.0, rel=0.03)


def test_reflow_pairs():
    noise = torch.randn(4, 3, generator=_gen(71))
    calls = []

    def sample_fn(z):
        calls.append(torch.is_grad_enabled())
        return SampleResult(sample=2 * z + 1, nfe=5)

    x1, x0 = reflow_pairs(sample_fn, noise)
    assert x1 is noise and torch.equal(x0, 2 * noise + 1) and calls == [False]
    x1, x0 = reflow_pairs(lambda z: -z, noise)
    assert torch.equal(x0, -noise)
    with pytest.raises(ValueError, match="shape"):
        reflow_pairs(lambda z: z[:2], noise)


def test_conditional_flow_matches_flowse():
    cf = ConditionalFlow()
    assert (cf.sigma_min, cf.sigma_max, cf.t_min) == (0.0, 0.487, 0.03) and cf.conditional
    g = _gen(81)
    x0, y, z = (torch.randn(3, 2, 4, generator=g, dtype=F64) for _ in range(3))
    t = torch.tensor([0.03, 0.5, 1.0], dtype=F64)
    xt, _ = cf.sample_marginal(x0, t, y, noise=z)
    tt = t[:, None, None]
    assert torch.allclose(xt, (1 - tt) * x0 + tt * y + (tt * 0.487) * z)
    # the velocity target is dx_t/dt for fixed (x0, y, z), as FlowSE trains it
    cf2 = ConditionalFlow(0.05, 0.5)
    u = cf2.velocity_target(x0, y, z)
    assert torch.allclose(u, (0.5 - 0.05) * z + (y - x0))
    assert torch.allclose(from_x0_eps(cf2, "velocity", x0, z, t, y), u)
    h = 1e-6
    fd = (cf2.sample_marginal(x0, t + h, y, noise=z)[0] - cf2.sample_marginal(x0, t - h, y, noise=z)[0]) / (2 * h)
    assert torch.allclose(fd, u, atol=1e-7)
    # prior y + sigma_max z
    yy = torch.randn(3000, 10, generator=_gen(82), dtype=F64)
    x1 = cf.prior_sample(yy.shape, y=yy, generator=_gen(83))
    assert (x1 - yy).std().item() == pytest.approx(0.487, rel=0.02)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="sigma_min"):
        OUVESDE(sigma_min=0.5, sigma_max=0.1)
    with pytest.raises(ValueError, match="kappa"):
        ResidualShift(kappa=-1.0)
    with pytest.raises(ValueError, match="etas"):
        ResidualShift(etas=torch.tensor([0.5, 0.2]))
    with pytest.raises(ValueError, match="both"):
        RDDMProcess(alphas_cumsum=torch.ones(3))
    with pytest.raises(ValueError, match="0.5"):
        ResfusionProcess(betas=torch.full((3,), 1e-3))
    with pytest.raises(ValueError, match="sigma_min"):
        FlowMatching(sigma_min=1.5)
