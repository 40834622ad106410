"""Discrete diffusion losses: exact-model NELBOs against the data entropy, and GIDD's ELBO against the
path-space KL of the continuous-time Markov chain computed by brute force."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from difflab.core.discrete_losses import antithetic_times, gidd_elbo, masked_diffusion_loss, subs_log_probs
from difflab.core.processes.discrete import GIDD, MaskedDiffusion, UniformDiffusion

V = 5
MASK = 4
SEQS = torch.tensor([[0, 1, 2], [0, 1, 3], [2, 2, 0], [3, 0, 1], [1, 3, 3]])
PROBS = torch.tensor([0.3, 0.25, 0.2, 0.15, 0.1], dtype=torch.float64)
ENTROPY = float(-(PROBS * PROBS.log()).sum())


def exact_denoiser_probs(x_t: torch.Tensor) -> torch.Tensor:
    """p(x0_i | x_t) for the distribution over SEQS, by enumeration; shape x_t.shape + (V,)."""
    compat = ((x_t[:, None, :] == SEQS[None]) | (x_t[:, None, :] == MASK)).all(-1)  # (B, K)
    post = PROBS[None] * compat
    post = post / post.sum(-1, keepdim=True)
    onehot = torch.nn.functional.one_hot(SEQS, V).double()  # (K, L, V)
    return torch.einsum("bk,klv->blv", post, onehot)


def exact_logits(x_t: torch.Tensor) -> torch.Tensor:
    return exact_denoiser_probs(x_t).clamp_min(1e-300).log()


# ------------------------------------------------------------------------------ SUBS
def test_subs_properties():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 6, V, generator=g, dtype=torch.float64)
    x_t = torch.randint(0, V, (4, 6), generator=g)
    x_t[0, :3] = MASK
    logp = subs_log_probs(logits, x_t, MASK)
    masked = x_t == MASK
    # zero masking probability
    assert bool(torch.isneginf(logp[..., MASK]).all())
    # masked positions: log-softmax over the real tokens
    ref = torch.log_softmax(logits[..., :MASK], -1)
    torch.testing.assert_close(logp[masked][:, :MASK], ref[masked])
    # carry-over unmasking: one-hot on the observed token
    obs = logp[~masked]
    torch.testing.assert_close(
        obs.gather(-1, x_t[~masked][:, None])[:, 0], torch.zeros(int((~masked).sum()), dtype=obs.dtype)
    )
    assert int(torch.isneginf(obs).sum()) == (V - 1) * obs.shape[0]
    # the [MASK] logit is irrelevant
    logits2 = logits.clone()
    logits2[..., MASK] = 1e4
    torch.testing.assert_close(subs_log_probs(logits2, x_t, MASK), logp)


def test_masked_loss_gradients_are_finite_and_vanish_on_unmasked_tokens():
    g = torch.Generator().manual_seed(1)
    process = MaskedDiffusion(V, MASK)
    x0 = torch.randint(0, MASK, (8, 5), generator=g)
    t = antithetic_times(8, g)
    t[0] = 0.0  # weight 1/t = inf where no token is masked must not poison the gradient
    x_t = process.sample_marginal(x0, t, g)
    logits = torch.randn(8, 5, V, generator=g, requires_grad=True)
    loss = masked_diffusion_loss(logits, x0, x_t, t, process)
    loss.backward()
    assert torch.isfinite(loss)
    assert bool(torch.isfinite(logits.grad).all())
    assert float(logits.grad[x_t != MASK].abs().max()) == 0.0


def test_attention_mask_mean():
    g = torch.Generator().manual_seed(2)
    process = MaskedDiffusion(V, MASK)
    x0 = torch.randint(0, MASK, (3, 6), generator=g)
    t = torch.tensor([0.3, 0.6, 0.9])
    x_t = process.sample_marginal(x0, t, g)
    logits = torch.randn(3, 6, V, generator=g)
    am = torch.ones(3, 6)
    am[:, 4:] = 0
    per = masked_diffusion_loss(logits, x0, x_t, t, process, reduction="none")
    mean = masked_diffusion_loss(logits, x0, x_t, t, process, attention_mask=am)
    torch.testing.assert_close(mean, per[:, :4].sum() / 12)


# ------------------------------------------------------------------------------ masked NELBO of the exact model
def exact_nelbo_by_quadrature(process: MaskedDiffusion, nodes: int) -> torch.Tensor:
    """Per-sequence NELBO E_t E_{x_t}[sum_i loss_i] of the exact denoiser: Gauss-Legendre over t, all mask patterns."""
    L = SEQS.shape[1]
    u, w = np.polynomial.legendre.leggauss(nodes)
    ts, ws = torch.tensor((u + 1) / 2), torch.tensor(w / 2)
    patterns = torch.tensor(list(itertools.product([0, 1], repeat=L)), dtype=torch.bool)  # (P, L) masked?
    K, P, T = len(SEQS), len(patterns), len(ts)
    x0 = SEQS[:, None, None, :].expand(K, P, T, L)
    x_t = torch.where(patterns[None, :, None, :], MASK, x0)
    t = ts[None, None, :, None].expand(K, P, T, L)
    keep = process.alpha(t)
    p_pattern = torch.where(patterns[None, :, None, :], 1 - keep, keep).prod(-1)  # (K, P, T)
    flat = lambda a: a.reshape(K * P * T, *a.shape[3:])  # noqa: E731
    per_tok = masked_diffusion_loss(
        exact_logits(flat(x_t)), flat(x0), flat(x_t), flat(t), process, reduction="none"
    ).reshape(K, P, T, L)
    integrand = (p_pattern * per_tok.sum(-1)).sum(1)  # (K, T)
    return (integrand * ws).sum(-1)


def test_exact_denoiser_reaches_minus_log_likelihood_with_linear_schedule():
    """Continuous-time NELBO of the true p(x0 | x_t) is -log p(x) for every sequence (alpha_1 = 0):
    the integrand is a polynomial in t, so 4 Gauss-Legendre nodes integrate it exactly."""
    nelbo = exact_nelbo_by_quadrature(MaskedDiffusion(V, MASK, "linear"), nodes=4)
    torch.testing.assert_close(nelbo, -PROBS.log(), rtol=1e-12, atol=1e-12)
    assert float((PROBS * nelbo).sum()) == pytest.approx(ENTROPY, abs=1e-12)


def test_exact_nelbo_is_schedule_invariant():
    """In mask-rate coordinates the NELBO only depends on the end points: log-linear and cosine (both
    alpha_1 = eps) agree, and fall short of -log p(x) by the missing [1 - eps, 1] piece."""
    loglin = exact_nelbo_by_quadrature(MaskedDiffusion(V, MASK, "log_linear", eps=1e-3), nodes=4)
    cosine = exact_nelbo_by_quadrature(MaskedDiffusion(V, MASK, "cosine", eps=1e-3), nodes=400)
    torch.testing.assert_close(cosine, loglin, rtol=1e-6, atol=1e-8)
    gap = -PROBS.log() - loglin
    assert bool((gap > 0).all()) and float(gap.max()) < 1e-2


def test_monte_carlo_nelbo_matches_entropy():
    """Single-draw MC NELBO with antithetic times, as in training, averages to the data entropy."""
    g = torch.Generator().manual_seed(3)
    process = MaskedDiffusion(V, MASK, "linear")
    n = 40000
    idx = torch.multinomial(PROBS, n, replacement=True, generator=g)
    x0 = SEQS[idx]
    t = antithetic_times(n, g, eps=1e-5, dtype=torch.float64)
    x_t = process.sample_marginal(x0, t, g)
    per_seq = masked_diffusion_loss(exact_logits(x_t), x0, x_t, t, process, reduction="none").sum(-1)
    mean, se = float(per_seq.mean()), float(per_seq.std() / math.sqrt(n))
    assert abs(mean - ENTROPY) < 4 * se, (mean, ENTROPY, se)


# ------------------------------------------------------------------------------ GIDD ELBO
@pytest.mark.parametrize("schedule", ["log_linear", "linear", "cosine"])
def test_gidd_elbo_of_masked_process_is_mdlm_loss(schedule):
    g = torch.Generator().manual_seed(4)
    process = MaskedDiffusion(V, MASK, schedule)
    x0 = torch.randint(0, MASK, (6, 7), generator=g)
    t = antithetic_times(6, g, dtype=torch.float64)
    x_t = process.sample_marginal(x0, t, g)
    logits = torch.randn(6, 7, V, generator=g, dtype=torch.float64)
    a = gidd_elbo(logits, x0, x_t, t, process, reduction="none")
    b = masked_diffusion_loss(logits, x0, x_t, t, process, reduction="none")
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_gidd_elbo_at_p_u_zero_equals_masked_linear():
    g = torch.Generator().manual_seed(5)
    gidd, masked = GIDD(V, MASK, p_u=0.0), MaskedDiffusion(V, MASK, "linear")
    x0 = torch.randint(0, MASK, (6, 7), generator=g)
    t = antithetic_times(6, g, eps=1e-4, t_max=1 - 1e-4, kind="shifted", dtype=torch.float64)
    t = t[:, None].expand(6, 7)  # per-token times work too
    x_t = gidd.sample_marginal(x0, t, g)
    logits = torch.randn(6, 7, V, generator=g)
    am = (torch.rand(6, 7, generator=g) > 0.2).float()
    torch.testing.assert_close(
        gidd_elbo(logits, x0, x_t, t, gidd, attention_mask=am),
        masked_diffusion_loss(logits.double(), x0, x_t, t, masked, attention_mask=am),
        rtol=1e-10,
        atol=1e-12,
    )


def path_kl_integrand(process, x: int, x_hat: torch.Tensor, t: float) -> float:
    """Brute force: sum_z q_t(z|x) sum_{y != z} [R_hat - R + R log(R/R_hat)] with reverse rates
    R = rho_z q_t(y|x)/q_t(z|x), R_hat = rho_z q_t(y|x_hat_z)/q_t(z|x_hat_z), and forward jump rates
    rho = (beta pi)' - (alpha'/alpha) beta pi from finite differences of the marginals."""
    other = 0 if x != 0 else 1

    def parts(tt):
        q = process.marginal_probs(torch.tensor([x]), torch.tensor(tt, dtype=torch.float64))[0].numpy()
        alpha = q[x] - q[other]
        bp = q.copy()
        bp[x] -= alpha
        return alpha, bp, q

    h = 1e-6
    a, bp, q = parts(t)
    a1, bp1, _ = parts(t + h)
    a0, bp0, _ = parts(t - h)
    rho = (bp1 - bp0) / (2 * h) - (a1 - a0) / (2 * h) / a * bp
    total = 0.0
    for z in range(V):
        if q[z] <= 0:
            continue
        q_hat = process.probs_at(x_hat[z][None], torch.tensor(t, dtype=torch.float64))[0].numpy()
        for y in range(V):
            if y == z:
                continue
            R, R_hat = rho[z] * q[y] / q[z], rho[z] * q_hat[y] / q_hat[z]
            total += q[z] * (R_hat - R + (R * math.log(R / R_hat) if R > 0 else 0.0))
    return total


def elbo_integrand(process, x: int, x_hat: torch.Tensor, t: float) -> float:
    """E_{z ~ q_t(.|x)} of gidd_elbo's per-token term, x_hat[z] the model's clean distribution at state z."""
    tt = torch.tensor(t, dtype=torch.float64)
    q = process.marginal_probs(torch.tensor([x]), tt)[0]
    z = torch.nonzero(q > 0)[:, 0]
    logits = x_hat[z].clamp_min(1e-300).log()[:, None, :]
    per = gidd_elbo(logits, torch.full((len(z), 1), x), z[:, None], tt.expand(len(z), 1), process, reduction="none")[
        :, 0
    ]
    return float((q[z] * per).sum())


TOKEN_PROCESSES = [
    ("gidd-0.2-1", GIDD(V, MASK, p_u=0.2, gamma=1.0)),
    ("gidd-0.5-0.5", GIDD(V, MASK, p_u=0.5, gamma=0.5)),
    ("gidd-0.3-2", GIDD(V, MASK, p_u=0.3, gamma=2.0)),
    ("uniform-cosine", UniformDiffusion(V, "cosine", mask_id=MASK)),
    ("masked-cosine", MaskedDiffusion(V, MASK, "cosine")),
]


@pytest.mark.parametrize("name,process", TOKEN_PROCESSES, ids=[p[0] for p in TOKEN_PROCESSES])
def test_gidd_elbo_integrand_is_the_path_space_kl(name, process):
    g = torch.Generator().manual_seed(6)
    x_hat = torch.softmax(torch.randn(V, V, generator=g, dtype=torch.float64), -1)
    x_hat[:, MASK] = 0
    x_hat = x_hat / x_hat.sum(-1, keepdim=True)
    for x in (0, 3):
        for t in (0.15, 0.5, 0.85):
            a, b = elbo_integrand(process, x, x_hat, t), path_kl_integrand(process, x, x_hat, t)
            assert a == pytest.approx(b, rel=1e-6, abs=1e-9), (x, t)


def posterior_mean_x_hat(process, p_data: np.ndarray, t: torch.Tensor) -> torch.Tensor:
    """x_hat(z, t) = p(x | z_t = z) for L = 1 data over the real tokens; shape t.shape + (V, V) as [z, x]."""
    lik = process.marginal_probs(torch.arange(MASK).expand(*t.shape, MASK), t[..., None].expand(*t.shape, MASK))
    post = torch.tensor(p_data)[:, None] * lik  # (..., x, z)
    x_hat = torch.zeros(*t.shape, V, V, dtype=torch.float64)
    x_hat[..., :MASK] = (post / post.sum(-2, keepdim=True).clamp_min(1e-300)).transpose(-1, -2)
    return x_hat


def exact_gidd_nelbo(process: GIDD, p_data: np.ndarray, nodes: int = 200) -> np.ndarray:
    """NELBO(x) of the posterior-mean model (L = 1): Gauss-Legendre in u with t = (1 - cos(pi u))/2, which
    smooths the square-root behaviour of c_t at both ends."""
    u, w = np.polynomial.legendre.leggauss(nodes)
    u, w = (u + 1) / 2, w / 2
    t = torch.tensor((1 - np.cos(np.pi * u)) / 2)
    jac = torch.tensor(w * np.pi / 2 * np.sin(np.pi * u))
    T = len(t)
    x_hat = posterior_mean_x_hat(process, p_data, t)  # (T, z, v)
    q = process.marginal_probs(torch.arange(MASK).expand(T, MASK), t[:, None].expand(T, MASK))  # (T, x, z)
    x0 = torch.arange(MASK)[None, :, None].expand(T, MASK, V)
    z = torch.arange(V)[None, None, :].expand(T, MASK, V)
    logits = x_hat[:, None].expand(T, MASK, V, V).clamp_min(1e-300).log()
    valid = q > 0  # states z reachable from x
    tb = t[:, None, None].expand(T, MASK, V)
    per = gidd_elbo(
        logits[valid][:, None], x0[valid][:, None], z[valid][:, None], tb[valid][:, None], process, reduction="none"
    )[:, 0]
    contrib = torch.zeros(T, MASK, V, dtype=torch.float64)
    contrib[valid] = q[valid] * per
    return (contrib.sum(-1) * jac[:, None]).sum(0).numpy()


def reverse_chain_likelihood(process: GIDD, p_data: np.ndarray, steps: int = 500) -> np.ndarray:
    """p_theta(x): the ancestral sampler's reverse chain from all-[MASK] at t = 1 to t = 0, enumerated."""
    grid = torch.linspace(1, 0, steps + 1, dtype=torch.float64)
    dist = torch.zeros(V, dtype=torch.float64)
    dist[MASK] = 1
    for t, s in zip(grid[:-1], grid[1:]):
        x_hat = posterior_mean_x_hat(process, p_data, t)
        dist = dist @ process.posterior_probs(torch.arange(V), x_hat, s.expand(V), t.expand(V))
    return dist[:MASK].numpy()


def test_gidd_exact_posterior_model_elbo_bounds_the_entropy():
    p_data = np.array([0.5, 0.25, 0.15, 0.1])
    H = float(-(p_data * np.log(p_data)).sum())
    tight = exact_gidd_nelbo(GIDD(V, MASK, p_u=0.0), p_data)
    np.testing.assert_allclose(tight, -np.log(p_data), atol=1e-10)  # p_u = 0: masked, tight per token
    np.testing.assert_allclose(reverse_chain_likelihood(GIDD(V, MASK, p_u=0.0), p_data), p_data, atol=1e-12)
    hybrid = GIDD(V, MASK, p_u=0.2)
    nelbo = exact_gidd_nelbo(hybrid, p_data)
    np.testing.assert_allclose(nelbo, exact_gidd_nelbo(hybrid, p_data, nodes=400), rtol=1e-4)
    # NELBO(x) >= -log p_theta(x) for the sampler's own chain, and E[-log p_theta] >= H. The posterior mean is
    # not the reverse-optimal x_hat once uniform noise makes q_t(z | x) depend on x: nothing here is tight.
    nll_theta = -np.log(reverse_chain_likelihood(hybrid, p_data))
    assert bool((nelbo > nll_theta).all()), (nelbo, nll_theta)
    assert p_data @ nll_theta > H + 1e-3
    assert p_data @ nelbo > p_data @ nll_theta + 0.1


def test_dynamic_weights():
    process = GIDD(V, MASK, p_u=0.2, gamma=1.0)
    x0 = torch.tensor([[1, 1, 1]])
    x_t = torch.tensor([[1, MASK, 2]])
    t = torch.tensor([0.3], dtype=torch.float64)
    w = process.dynamic_weights(x_t, x0, t)[0]
    B = 2 * 0.2 / 0.8
    assert float(w[0]) == pytest.approx(B / 4 * math.exp(0.5 / (1 + math.exp(0.3))))
    assert float(w[1]) == 2.0 and float(w[2]) == 1.0
    logits = torch.zeros(1, 3, V)
    loss = gidd_elbo(logits, x0, x_t, t, process, weighting="dynamic", reduction="none")
    elbo = gidd_elbo(logits, x0, x_t, t, process, reduction="none")
    torch.testing.assert_close(loss / elbo, w / process.elbo_weights(x_t, x0, t))
    with pytest.raises(ValueError, match="GIDD process"):
        gidd_elbo(logits, x0, x_t, t, MaskedDiffusion(V, MASK), weighting="dynamic")
    with pytest.raises(ValueError, match="weighting"):
        gidd_elbo(logits, x0, x_t, t, process, weighting="clip")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ time sampling
def test_antithetic_times():
    g = torch.Generator().manual_seed(7)
    n, eps = 16, 1e-3
    t = antithetic_times(n, g, eps, dtype=torch.float64)
    u = (t - eps) / (1 - eps)
    assert sorted(torch.floor(u * n).long().tolist()) == list(range(n))  # one per stratum
    s = antithetic_times(n, g, 1e-4, t_max=1 - 1e-4, kind="shifted", dtype=torch.float64)
    d = torch.diff(torch.sort(s).values)
    torch.testing.assert_close(d, torch.full_like(d, (1 - 2e-4) / n))
    assert float(s.min()) >= 1e-4 and float(s.max()) < 1 - 1e-4
    with pytest.raises(ValueError, match="kind"):
        antithetic_times(4, g, kind="sobol")  # type: ignore[arg-type]
