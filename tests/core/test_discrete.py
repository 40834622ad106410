"""Discrete corruption processes against brute-force enumeration of their forward chains.

Oracles: one-step transition matrices written here from the definitions (MDLM absorbing step, D3PM
uniform step, GIDD's alpha_{t|s} / beta_{t|s} pi_{t|s} from its marginal formula) composed over a
random grid; a continuous-time Markov chain integrated from rates obtained by finite differences of
the marginal formula; Bayes' rule q(x_s | x_t, x0) = q(x_t | x_s) q(x_s | x0) / q(x_t | x0).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
import torch

from difflab.core.processes.discrete import GIDD, MaskedDiffusion, SpindleMaskedDiffusion, UniformDiffusion
from difflab.core.schedules import log_linear_dsigma, log_linear_sigma

V = 5
MASK = 4
REAL = [0, 1, 2, 3]


# ------------------------------------------------------------------------------ reference formulas
def ref_alpha(schedule: str, t: float, eps: float = 1e-3) -> float:
    if schedule == "log_linear":
        return math.exp(-float(log_linear_sigma(torch.tensor(t, dtype=torch.float64), eps)))
    if schedule == "linear":
        return 1.0 - t
    return eps + (1 - eps) * math.cos(math.pi * t / 2)


def ref_gidd(t: float, p_u: float, gamma: float) -> tuple[float, np.ndarray]:
    """(alpha_t, beta_t pi_t) written from the GIDD definition."""
    B = 2**gamma * p_u / (1 - p_u)
    c = B * t ** (gamma / 2) * (1 - t) ** (gamma / 2)
    C = 1 + c
    bp = np.full(V, c / (V - 1) / C)
    bp[MASK] = t / C
    return (1 - t) / C, bp


def step_masked(a_s: float, a_t: float) -> np.ndarray:
    M = np.zeros((V, V))
    for v in REAL:
        M[v, v] = a_t / a_s
        M[v, MASK] = 1 - a_t / a_s
    M[MASK, MASK] = 1.0
    return M


def step_uniform(a_s: float, a_t: float, support: list[int]) -> np.ndarray:
    u = np.zeros(V)
    u[support] = 1.0 / len(support)
    r = a_t / a_s
    return r * np.eye(V) + (1 - r) * np.outer(np.ones(V), u)


def step_gidd(s: float, t: float, p_u: float, gamma: float) -> np.ndarray:
    a_s, bp_s = ref_gidd(s, p_u, gamma)
    a_t, bp_t = ref_gidd(t, p_u, gamma)
    r = a_t / a_s
    return r * np.eye(V) + np.outer(np.ones(V), bp_t - r * bp_s)


def compose(step, times: np.ndarray) -> np.ndarray:
    P = np.eye(V)
    for s, t in zip(times[:-1], times[1:]):
        P = P @ step(s, t)
    return P


def random_grid(rng: np.random.Generator, lo: float, hi: float, n: int = 40) -> np.ndarray:
    inner = np.sort(rng.uniform(lo, hi, n))
    return np.concatenate([[lo], inner, [hi]])


def processes():
    out = []
    for sched in ("log_linear", "linear", "cosine"):
        p = MaskedDiffusion(V, MASK, sched)
        out.append((f"masked-{sched}", p, lambda s, t, p=p, sc=sched: step_masked(ref_alpha(sc, s), ref_alpha(sc, t))))
    for sched, mask_id in (("log_linear", None), ("cosine", MASK)):
        p = UniformDiffusion(V, sched, mask_id=mask_id)
        sup = list(range(V)) if mask_id is None else REAL
        out.append(
            (
                f"uniform-{sched}-{mask_id}",
                p,
                lambda s, t, sc=sched, sup=sup: step_uniform(ref_alpha(sc, s), ref_alpha(sc, t), sup),
            )
        )
    for p_u, gamma in ((0.0, 1.0), (0.2, 1.0), (0.5, 0.5), (0.3, 2.0)):
        p = GIDD(V, MASK, p_u=p_u, gamma=gamma)
        out.append((f"gidd-{p_u}-{gamma}", p, lambda s, t, a=p_u, g=gamma: step_gidd(s, t, a, g)))
    return out


PROCS = processes()


def clean_tokens(process) -> list[int]:
    return REAL if getattr(process, "mask_id", None) is not None else list(range(V))


# ------------------------------------------------------------------------------ marginals
@pytest.mark.parametrize("name,process,step", PROCS, ids=[p[0] for p in PROCS])
def test_marginals_equal_composed_one_step_chain(name, process, step):
    rng = np.random.default_rng(0)
    for t in (0.07, 0.5, 0.93):
        P = compose(step, random_grid(rng, 0.0, t))
        x0 = torch.tensor(clean_tokens(process))
        got = process.marginal_probs(x0, torch.full((len(x0),), t, dtype=torch.float64)).numpy()
        np.testing.assert_allclose(got, P[clean_tokens(process)], atol=1e-12, rtol=1e-10)
        np.testing.assert_allclose(got.sum(-1), 1.0, atol=1e-12)


@pytest.mark.parametrize("name,process,step", PROCS, ids=[p[0] for p in PROCS])
def test_posterior_is_bayes_rule_on_the_chain(name, process, step):
    rng = np.random.default_rng(1)
    for s, t in ((0.1, 0.4), (0.3, 0.95), (0.0, 0.5), (0.6, 0.61)):
        grid = random_grid(rng, 0.0, s, 20) if s > 0 else np.array([0.0])
        Ms = compose(step, grid) if s > 0 else np.eye(V)
        Q = compose(step, random_grid(rng, s, t, 20))
        Mt = Ms @ Q
        for x0 in clean_tokens(process):
            xt = torch.arange(V)
            reachable = Mt[x0] > 1e-14
            onehot = torch.nn.functional.one_hot(torch.full((V,), x0), V).double()
            got = process.posterior_probs(
                xt, onehot, torch.full((V,), s, dtype=torch.float64), torch.full((V,), t, dtype=torch.float64)
            ).numpy()
            for z in np.nonzero(reachable)[0]:
                expected = Q[:, z] * Ms[x0] / Mt[x0, z]
                np.testing.assert_allclose(got[z], expected, atol=1e-10, err_msg=f"x0={x0} x_t={z} s={s} t={t}")


@pytest.mark.parametrize("name,process,step", PROCS, ids=[p[0] for p in PROCS])
def test_posterior_with_soft_x0_matches_brute_force(name, process, step):
    """Soft x0: masked = mixture of exact posteriors; GIDD/uniform = q(x_t|x_s) q_s(x_s|x_hat) normalised."""
    rng = np.random.default_rng(2)
    s, t = 0.25, 0.7
    Ms = compose(step, random_grid(rng, 0.0, s, 20))
    Q = compose(step, random_grid(rng, s, t, 20))
    Mt = Ms @ Q
    toks = clean_tokens(process)
    p = np.zeros(V)
    p[toks] = rng.dirichlet(np.ones(len(toks)))
    got = process.posterior_probs(
        torch.arange(V), torch.tensor(p).expand(V, V), torch.tensor(s, dtype=torch.float64), torch.tensor(t)
    ).numpy()
    for z in range(V):
        if isinstance(process, MaskedDiffusion):
            if z != MASK:
                expected = np.eye(V)[z]
            else:
                expected = sum(p[x] * Q[:, z] * Ms[x] / Mt[x, z] for x in toks)
        else:
            num = Q[:, z] * (p @ Ms)
            if num.sum() == 0:  # unreachable x_t (the excluded [MASK] of a uniform process)
                continue
            expected = num / num.sum()
        np.testing.assert_allclose(got[z], expected, atol=1e-10, err_msg=f"x_t={z}")


@pytest.mark.parametrize("p_u,gamma", [(0.2, 1.0), (0.5, 0.5), (0.4, 2.0)])
def test_gidd_marginals_solve_the_forward_ctmc(p_u, gamma):
    """Integrate dP/dt = P R(t), with jump rates rho_y = (beta pi)'_y - (alpha'/alpha)(beta pi)_y from finite
    differences of the marginal formula, and compare with the closed-form marginal."""
    process = GIDD(V, MASK, p_u=p_u, gamma=gamma)

    def rates(t):
        h = min(1e-7, 0.1 * t)
        a, bp = ref_gidd(t, p_u, gamma)
        a1, bp1 = ref_gidd(t + h, p_u, gamma)
        a0, bp0 = ref_gidd(t - h, p_u, gamma)
        da, dbp = (a1 - a0) / (2 * h), (bp1 - bp0) / (2 * h)
        rho = dbp - da / a * bp
        R = np.outer(np.ones(V), rho)
        np.fill_diagonal(R, 0.0)
        np.fill_diagonal(R, -R.sum(1))
        return R

    t_end = 0.8
    u = np.linspace(0, 1, 801)
    grid = np.unique(np.concatenate([t_end * u**8, t_end * u]))  # dense near t = 0, where c_t' is singular
    P = np.eye(V)
    for s, t in zip(grid[:-1], grid[1:]):
        P = P @ scipy.linalg.expm(rates(0.5 * (s + t)) * (t - s))
    got = process.marginal_probs(torch.tensor(REAL), torch.tensor(t_end, dtype=torch.float64)).numpy()
    np.testing.assert_allclose(got, P[REAL], atol=2e-5)


# ------------------------------------------------------------------------------ GIDD specifics
def test_gidd_uniform_share_at_half_is_p_u():
    for p_u, gamma in ((0.1, 1.0), (0.5, 0.5), (0.3, 2.0)):
        probs = GIDD(V, MASK, p_u, gamma).marginal_probs(torch.tensor([0]), torch.tensor(0.5, dtype=torch.float64))[0]
        C = 1 / (1 - p_u)  # c_{1/2} / C_{1/2} = p_u
        alpha = 0.5 / C
        assert float(probs[MASK]) == pytest.approx(0.5 / C, abs=1e-12)
        assert float(1 - probs[MASK] - alpha) == pytest.approx(p_u, abs=1e-12)
        assert float(probs[1]) == pytest.approx(p_u / (V - 1), abs=1e-12)


def test_gidd_with_p_u_zero_is_masked_diffusion_with_linear_schedule():
    g = torch.Generator().manual_seed(0)
    gidd, masked = GIDD(V, MASK, p_u=0.0), MaskedDiffusion(V, MASK, "linear")
    x0 = torch.randint(0, 4, (6, 7), generator=g)
    t = torch.rand(6, 7, generator=g, dtype=torch.float64) * 0.98 + 0.01
    s = t * torch.rand(6, 7, generator=g, dtype=torch.float64)
    torch.testing.assert_close(gidd.marginal_probs(x0, t), masked.marginal_probs(x0, t), rtol=0, atol=1e-14)
    x_t = masked.sample_marginal(x0, t, torch.Generator().manual_seed(1))
    soft = torch.softmax(torch.randn(6, 7, V, generator=g, dtype=torch.float64), -1)
    soft[..., MASK] = 0
    soft = soft / soft.sum(-1, keepdim=True)
    torch.testing.assert_close(
        gidd.posterior_probs(x_t, soft, s, t), masked.posterior_probs(x_t, soft, s, t), rtol=0, atol=1e-12
    )
    torch.testing.assert_close(gidd.elbo_weights(x_t, x0, t), masked.elbo_weights(x_t, x0, t), rtol=1e-12, atol=0)
    # and the samples of the forward process agree in distribution (same masking probability)
    big = torch.zeros(20000, dtype=torch.long)
    zg = gidd.sample_marginal(big, torch.tensor(0.3), torch.Generator().manual_seed(3))
    assert set(zg.unique().tolist()) <= {0, MASK}
    assert abs((zg == MASK).double().mean().item() - 0.3) < 4 * math.sqrt(0.21 / 20000)


def test_gidd_elbo_weights_match_the_formula_sheet():
    p_u, gamma = 0.3, 1.0
    process = GIDD(V, MASK, p_u=p_u, gamma=gamma)
    t = torch.tensor([0.2, 0.2, 0.2, 0.7, 0.7, 0.7], dtype=torch.float64)
    x0 = torch.tensor([1, 1, 1, 2, 2, 2])
    x_t = torch.tensor([1, MASK, 3, 2, MASK, 0])
    got = process.elbo_weights(x_t, x0, t)
    B = 2**gamma * p_u / (1 - p_u)
    N = V - 1
    for i in range(6):
        ti = float(t[i])
        c = B * ti ** (gamma / 2) * (1 - ti) ** (gamma / 2)
        dc = (gamma / 2) * (1 - 2 * ti) / (ti * (1 - ti)) * c
        if x_t[i] == x0[i]:
            w = (c + (1 - ti) * dc) / N / ((1 - ti) * (1 - ti + c / N))
        elif x_t[i] == MASK:
            w = 1 / (ti * (1 - ti))
        else:
            w = (c + (1 - ti) * dc) / ((1 - ti) * c)
        assert float(got[i]) == pytest.approx(w, rel=1e-12)


@pytest.mark.parametrize("name,process,step", PROCS, ids=[p[0] for p in PROCS])
def test_posterior_rates_are_the_elbo_rates(name, process, step):
    """p(z_s = y | z_t = z)/h -> rho_t(z) q_t(y|x_hat)/q_t(z|x_hat) as h -> 0, with rho_t(z) = w_t(z, x) q_t(z|x):
    the sampler's reverse step and the ELBO weights describe the same reverse chain."""
    rng = np.random.default_rng(3)
    t, h = 0.45, 1e-7
    toks = clean_tokens(process)
    p = np.zeros(V)
    p[toks] = rng.dirichlet(np.ones(len(toks)))
    x_hat = torch.tensor(p)
    tt = torch.tensor(t, dtype=torch.float64)
    q_hat = process.probs_at(x_hat[None], tt)[0].numpy()
    post = process.posterior_probs(torch.arange(V), x_hat.expand(V, V), tt - h, tt).numpy()
    x_ref = torch.tensor(toks[0])
    for z in range(V):
        q_x = process.marginal_probs(x_ref[None], tt)[0].numpy()
        if q_x[z] <= 0:
            continue
        rho = float(process.elbo_weights(torch.tensor([z]), x_ref[None], tt)) * q_x[z]
        for y in range(V):
            if y == z:
                continue
            expected = rho * q_hat[y] / q_hat[z]
            assert post[z, y] / h == pytest.approx(expected, rel=2e-5, abs=1e-9), (z, y)


# ------------------------------------------------------------------------------ per-element time
@pytest.mark.parametrize("name,process,step", PROCS, ids=[p[0] for p in PROCS])
def test_per_token_time(name, process, step):
    g = torch.Generator().manual_seed(4)
    toks = torch.tensor(clean_tokens(process))
    x0 = toks[torch.randint(0, len(toks), (3, 4), generator=g)]
    t = torch.rand(3, 4, generator=g, dtype=torch.float64) * 0.9 + 0.05
    s = t * 0.5
    x_t = process.sample_marginal(x0, t, g)
    soft = torch.softmax(torch.randn(3, 4, V, generator=g, dtype=torch.float64), -1)
    m = process.marginal_probs(x0, t)
    post = process.posterior_probs(x_t, soft, s, t)
    for b in range(3):
        for i in range(4):
            one = process.marginal_probs(x0[b, i].reshape(1, 1), t[b, i])
            torch.testing.assert_close(m[b, i], one[0, 0], rtol=0, atol=1e-14)
            one_post = process.posterior_probs(x_t[b, i].reshape(1, 1), soft[b, i].reshape(1, 1, V), s[b, i], t[b, i])
            torch.testing.assert_close(post[b, i], one_post[0, 0], rtol=0, atol=1e-14)
    # (B,) times broadcast over L
    tb = torch.tensor([0.2, 0.5, 0.8], dtype=torch.float64)
    torch.testing.assert_close(process.marginal_probs(x0, tb), process.marginal_probs(x0, tb[:, None].expand(3, 4)))


@pytest.mark.parametrize("name,process,step", PROCS, ids=[p[0] for p in PROCS])
def test_sample_marginal_frequencies(name, process, step):
    n = 40000
    x0_tok = clean_tokens(process)[1]
    x0 = torch.full((n,), x0_tok)
    t = 0.55
    z = process.sample_marginal(x0, torch.tensor(t), torch.Generator().manual_seed(5))
    counts = torch.bincount(z, minlength=V).numpy()
    probs = process.marginal_probs(torch.tensor([x0_tok]), torch.tensor(t, dtype=torch.float64))[0].numpy()
    support = probs > 0
    assert counts[~support].sum() == 0
    stat = scipy.stats.chisquare(counts[support], probs[support] * n)
    assert stat.pvalue > 1e-3, (counts, probs * n)


def test_uniform_resample_flags():
    process = UniformDiffusion(V, "linear", mask_id=MASK)
    x0 = torch.full((50000,), 2)
    x_t, flags = process.sample_marginal(x0, torch.tensor(0.4), torch.Generator().manual_seed(6), return_flags=True)
    assert bool((x_t[~flags] == 2).all())
    assert abs(flags.double().mean().item() - 0.4) < 4 * math.sqrt(0.24 / 50000)
    # coincidental matches count as noised (DDPD's planner target): about 1/4 of flagged positions
    assert abs((x_t[flags] == 2).double().mean().item() - 0.25) < 0.02
    assert not bool((x_t == MASK).any())
    assert not bool((process.prior_sample((1000,), torch.Generator().manual_seed(0)) == MASK).any())


# ------------------------------------------------------------------------------ masked schedule
@pytest.mark.parametrize("schedule", ["log_linear", "linear", "cosine"])
def test_loss_weight_is_dsigma_over_expm1_sigma(schedule):
    process = MaskedDiffusion(V, MASK, schedule, eps=1e-3)
    t = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    tt = t.clone().requires_grad_(True)
    sigma = process.sigma(tt)
    (dsigma,) = torch.autograd.grad(sigma.sum(), tt)
    expected = dsigma / torch.expm1(sigma.detach())
    torch.testing.assert_close(process.loss_weight(t), expected, rtol=1e-10, atol=0)
    torch.testing.assert_close(process.dsigma(t), dsigma, rtol=1e-10, atol=0)
    if schedule == "log_linear":  # exactly 1/t for every eps, and MDLM's sigma
        torch.testing.assert_close(process.loss_weight(t), 1 / t, rtol=1e-12, atol=0)
        torch.testing.assert_close(process.sigma(t), log_linear_sigma(t, 1e-3))
        torch.testing.assert_close(process.dsigma(t), log_linear_dsigma(t, 1e-3))


def test_masked_prior_and_endpoints():
    p = MaskedDiffusion(V, MASK)
    assert bool((p.prior_sample((2, 3)) == MASK).all())
    m1 = p.marginal_probs(torch.tensor([0]), torch.tensor(1.0, dtype=torch.float64))[0]
    assert float(m1[MASK]) == pytest.approx(1 - 1e-3)  # alpha_1 = eps for log-linear
    m0 = p.marginal_probs(torch.tensor([0]), torch.tensor(0.0, dtype=torch.float64))[0]
    assert float(m0[0]) == 1.0


# ------------------------------------------------------------------------------ spindle
def spindle(lam=0.3):
    freq = torch.tensor([1000.0, 300.0, 10.0, 1.0, 0.0])  # token 0 frequent, token 3 rare, [MASK] 4
    return SpindleMaskedDiffusion(freq, lam, mask_id=MASK, schedule="linear")


def test_spindle_keeps_frequent_tokens_longer():
    p = spindle()
    x0 = torch.tensor([[0, 1, 2, 3]])
    for t in (0.2, 0.5, 0.8):
        keep = p.keep_prob(torch.tensor([t], dtype=torch.float64), x0)[0]
        assert bool((keep[:-1] > keep[1:]).all()), keep
        # centring: the sequence's mean keep probability is the base alpha_t (no clipping here)
        assert float(keep.mean()) == pytest.approx(1 - t, abs=1e-12)
    # empirically
    n = 20000
    xs = x0.expand(n, 4)
    z = p.sample_marginal(xs, torch.tensor(0.5), torch.Generator().manual_seed(7))
    masked_rate = (z == MASK).double().mean(0)
    expected = 1 - p.keep_prob(torch.tensor([0.5], dtype=torch.float64), x0)[0]
    assert float((masked_rate - expected).abs().max()) < 4 * math.sqrt(0.25 / n)
    assert masked_rate[3] > masked_rate[0] + 0.2


def test_spindle_formula_and_lambda_zero():
    p = spindle()
    w = torch.log1p(torch.tensor([1000.0, 300.0, 10.0, 1.0, 0.0], dtype=torch.float64))
    w = w / w.max()
    x0 = torch.tensor([[0, 0, 2, 3, 1]])
    t = 0.3
    centre = w[x0[0]].mean()
    expected = (1 - t + 0.3 * math.sin(math.pi * t) * (w[x0[0]] - centre)).clamp(0, 0.999)
    torch.testing.assert_close(p.keep_prob(torch.tensor([t], dtype=torch.float64), x0)[0], expected)
    base = MaskedDiffusion(V, MASK, "linear")
    p0 = spindle(lam=0.0)
    tt = torch.tensor([0.4], dtype=torch.float64)
    torch.testing.assert_close(p0.marginal_probs(x0, tt), base.marginal_probs(x0, tt))


def test_spindle_posterior_with_sequence_centre_is_bayes():
    p = spindle()
    x0 = torch.tensor([[0, 2, 3, 1]])
    centre = p.word_weight[x0[0]].mean()
    s, t = torch.tensor([0.3], dtype=torch.float64), torch.tensor([0.6], dtype=torch.float64)
    ks, kt = p.keep_prob(s, x0)[0], p.keep_prob(t, x0)[0]
    x_t = torch.full((1, 4), MASK)
    post = p.posterior_probs(x_t, torch.nn.functional.one_hot(x0, V).double(), s, t, centre=centre)[0]
    for i in range(4):
        unmask = (ks[i] - kt[i]) / (1 - kt[i])
        assert float(post[i, x0[0, i]]) == pytest.approx(float(unmask), abs=1e-12)
        assert float(post[i, MASK]) == pytest.approx(float(1 - unmask), abs=1e-12)


def test_spindle_loss_weight_is_minus_dalpha_over_one_minus_alpha():
    p = spindle()
    x0 = torch.tensor([[0, 2, 3, 1]])
    t = torch.tensor([0.35], dtype=torch.float64)
    h = 1e-6
    da = (p.keep_prob(t + h, x0) - p.keep_prob(t - h, x0)) / (2 * h)
    expected = -da / (1 - p.keep_prob(t, x0))
    torch.testing.assert_close(p.loss_weight(t, x0), expected, rtol=1e-6, atol=0)
    with pytest.raises(ValueError, match="needs x0"):
        p.loss_weight(t)


# ------------------------------------------------------------------------------ errors
def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="'quadratic'"):
        MaskedDiffusion(V, MASK, "quadratic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="mask_id"):
        MaskedDiffusion(V, 7)
    with pytest.raises(ValueError, match="p_u"):
        GIDD(V, MASK, p_u=1.0)
    with pytest.raises(ValueError, match="gamma"):
        GIDD(V, MASK, p_u=0.1, gamma=3.0)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        MaskedDiffusion(V, MASK).marginal_probs(torch.tensor([9]), torch.tensor(0.5))
    with pytest.raises(ValueError, match="integer token"):
        GIDD(V, MASK).marginal_probs(torch.tensor([0.5]), torch.tensor(0.5))
