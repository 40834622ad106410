"""Correlated GP / OU noise over irregular timestamps (Stochastic Process Diffusion) against the
kernel written out by hand, the Cholesky factor and the O(L) OU recursion."""

from __future__ import annotations

import math

import pytest
import torch

from difflab.core.processes import (
    VPSDE,
    CorrelatedNoise,
    DiscreteVP,
    gp_kernel,
    kernel_cholesky,
    ou_kernel,
    ou_recursion_sample,
)

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _irregular_times(L: int, seed: int, batch: int | None = None) -> torch.Tensor:
    shape = (L,) if batch is None else (batch, L)
    return torch.rand(shape, generator=_gen(seed), dtype=F64).sort(dim=-1).values


def _by_hand(times, kind, scale, jitter=1e-4):
    L = times.shape[-1]
    out = torch.empty(L, L, dtype=F64)
    for i in range(L):
        for j in range(L):
            d = float(times[i] - times[j])
            k = math.exp(-((d / scale) ** 2)) if kind == "gp" else math.exp(-scale * abs(d))
            out[i, j] = k + (jitter if i == j else 0.0)
    return out


def test_kernels_match_the_definition_and_gp_has_no_factor_two():
    times = _irregular_times(7, 0)
    assert torch.allclose(gp_kernel(times, 0.3), _by_hand(times, "gp", 0.3), atol=1e-15)
    assert torch.allclose(ou_kernel(times, 0.5), _by_hand(times, "ou", 0.5), atol=1e-15)
    # two timestamps one length scale apart correlate by e^{-1}, not e^{-1/2}
    k = gp_kernel(torch.tensor([0.0, 0.1], dtype=F64), 0.1, jitter=0.0)
    assert k[0, 1].item() == pytest.approx(math.exp(-1.0), rel=1e-12)
    # batched times give a batch of kernels
    bt = _irregular_times(5, 1, batch=3)
    kb = ou_kernel(bt, 2.0)
    assert kb.shape == (3, 5, 5)
    for b in range(3):
        assert torch.allclose(kb[b], _by_hand(bt[b], "ou", 2.0), atol=1e-15)


@pytest.mark.parametrize("kind,scale", [("gp", 0.2), ("ou", 3.0)])
def test_noise_like_covariance_matches_the_kernel(kind, scale):
    """Irregular timestamps, data (B, L, C): sample covariance over many channels equals Sigma per series."""
    times = _irregular_times(6, 2, batch=2)
    proc = CorrelatedNoise(VPSDE(), kind, scale).with_times(times)
    x = torch.empty(2, 6, 40000, dtype=F64)
    eps = proc.noise_like(x, _gen(3))
    assert eps.shape == x.shape
    for b in range(2):
        e = eps[b]  # (L, C): C samples of the L-vector
        cov = e @ e.T / e.shape[1]
        assert (cov - _by_hand(times[b], kind, scale)).abs().max().item() < 0.03


def test_shared_times_and_other_time_axis():
    times = _irregular_times(5, 4)
    proc = CorrelatedNoise(VPSDE(), "gp", 0.3, time_dim=2).with_times(times)
    eps = proc.noise_like(torch.empty(3000, 4, 5, dtype=F64), _gen(5))  # (B, C, L)
    e = eps.permute(2, 0, 1).reshape(5, -1)
    cov = e @ e.T / e.shape[1]
    assert (cov - _by_hand(times, "gp", 0.3)).abs().max().item() < 0.03


def test_ou_recursion_equals_cholesky_sampler():
    times = _irregular_times(9, 6, batch=4)
    theta = 1.7
    z = torch.randn(4, 9, generator=_gen(7), dtype=F64)
    x_rec = ou_recursion_sample(times, theta, z)
    chol = kernel_cholesky(ou_kernel(times, theta, jitter=0.0))
    x_chol = (chol @ z.unsqueeze(-1)).squeeze(-1)
    assert torch.allclose(x_rec, x_chol, atol=1e-12)
    # and its sample covariance is the OU kernel
    t1 = times[0]
    zz = torch.randn(50000, 9, generator=_gen(8), dtype=F64)
    xs = ou_recursion_sample(t1, theta, zz)
    cov = xs.T @ xs / xs.shape[0]
    assert (cov - _by_hand(t1, "ou", theta, jitter=0.0)).abs().max().item() < 0.03
    with pytest.raises(ValueError, match="increasing"):
        ou_recursion_sample(times.flip(-1), theta, z)


def test_whiten_inverts_colouring_and_whitened_noise_is_white():
    times = _irregular_times(8, 9, batch=3)
    proc = CorrelatedNoise(VPSDE(), "gp", 0.1).with_times(times)
    z = torch.randn(3, 8, 5, generator=_gen(10), dtype=F64)
    eps = proc.colour(z)
    L = kernel_cholesky(gp_kernel(times, 0.1))
    assert torch.allclose(eps, L @ z, atol=1e-12)
    assert torch.allclose(proc.whiten(eps), z, atol=1e-9)
    # score of x_t | x0: -Sigma^{-1} eps / s
    std = torch.tensor([0.5, 1.0, 2.0], dtype=F64)
    sigma = gp_kernel(times, 0.1)
    expected = -torch.linalg.solve(sigma, eps) / std[:, None, None]
    assert torch.allclose(proc.score_from_noise(eps, std), expected, rtol=1e-6, atol=1e-6)


def test_process_delegates_to_base_and_colours_marginal_and_prior():
    base = DiscreteVP("linear", num_steps=100)
    times = _irregular_times(4, 11)
    proc = CorrelatedNoise(base, "ou", 0.5).with_times(times)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=F64)
    for mine, theirs in zip(proc.coefficients(t), base.coefficients(t)):
        assert torch.equal(mine, theirs)
    assert torch.equal(proc.alpha_bar(t), base.alpha_bar(t))  # schedule helpers pass through
    assert torch.equal(proc.posterior_std(t * 0.5, t), base.posterior_std(t * 0.5, t))
    x0 = torch.zeros(20000, 4, 1, dtype=F64)
    tt = torch.full((20000,), 0.5, dtype=F64)
    xt, eps = proc.sample_marginal(x0, tt, generator=_gen(12))
    s = base.coefficients(tt[:1])[2].item()
    assert torch.allclose(xt, s * eps)
    e = xt[..., 0]
    cov = e.T @ e / e.shape[0]
    assert (cov - s**2 * _by_hand(times, "ou", 0.5)).abs().max().item() < 0.03
    prior = proc.prior_sample((20000, 4, 1), generator=_gen(13), dtype=F64)[..., 0]
    cov = prior.T @ prior / prior.shape[0]
    s1 = base.coefficients(torch.ones(1, dtype=F64))[2].item()
    assert (cov - s1**2 * _by_hand(times, "ou", 0.5)).abs().max().item() < 0.03


def test_errors():
    proc = CorrelatedNoise(VPSDE(), "gp", 0.1)
    with pytest.raises(ValueError, match="with_times"):
        proc.noise_like(torch.empty(2, 5, 1))
    bound = proc.with_times(_irregular_times(5, 14))
    with pytest.raises(ValueError, match="timestamps"):
        bound.noise_like(torch.empty(2, 6, 1))
    with pytest.raises(ValueError, match="kernel"):
        CorrelatedNoise(VPSDE(), "rbf", 0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive definite"):
        kernel_cholesky(gp_kernel(torch.tensor([0.0, 0.0]), 0.1, jitter=0.0))
